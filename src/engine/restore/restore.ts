// Restore: take one recovery point back as a unit, into a NEW database and a new bucket/prefix
// (a safe clone). The database and the documents are restored at the same time; every restored
// document is checked against its manifest SHA-256. A failed restore stops the other half and
// removes what it created (the new database, the restored objects) — never a database that was
// there before: that one is refused before either half starts.
import type { RestoreRequest } from '../../../api/v1alpha1/restoreRequest.ts';
import {
  clientFor,
  requireNewDatabase,
  restoreFromStore,
  type PgConnection,
} from '../../components/postgres/postgres.ts';
import { copyObject, forEachLimit, listAll } from '../../components/documentLibrary/copy.ts';
import type { Provider } from '../../../api/v1alpha1/common.ts';
import type { ProjectConfig } from '../../config/config.ts';
import { allowedBucket, allowedDatabase, projectOf, providerFor } from '../../config/policy.ts';
import { IntegrityError, PolicyError, ValidationError } from '../../errors/index.ts';
import { readEntries } from '../../format/entries.ts';
import { backupTimestamp, documentKey, restoreId as restoreIdFor } from '../../format/layout.ts';
import type { ManifestHeader } from '../../format/manifest.ts';
import { ownershipTags, type ObjectStore } from '../../providers/types.ts';
import { nowOf, type EngineContext } from '../context.ts';
import { locateBackup, type LocatedBackup } from '../manifests.ts';
import { ProgressTracker } from '../progress.ts';
import { checkProjectProvider, checkProvider, pgTarget, type PgTarget } from '../backup/plan.ts';
import { connectionFor, snapshotsFor } from '../databases.ts';
import pg from 'pg';

export interface RestoreResult {
  restoreId: string;
  backupId: string;
  /** `endpoint`: where the NEW instance of a snapshot restore listens. */
  database: { instanceId: string; databaseName: string; endpoint?: { host: string; port: number } };
  documentLibrary: { bucket: string; prefix: string; objectCount: number; totalSize: number };
  durationMs: number;
}

/** Where the database comes back: a new database on an instance (dump) or a new instance (snapshot). */
type DatabaseTarget =
  | { kind: 'dump'; instanceId: string; databaseName: string; conn: PgTarget }
  | { kind: 'snapshot'; instanceId: string; databaseName: string; snapshotId: string };

interface Target {
  database: DatabaseTarget;
  store: ObjectStore;
  bucket: string;
  prefix: string;
}

// RDS DBInstanceIdentifier: 1-63 letters, digits, hyphens; a letter first; no "--", no trailing "-"
const rdsInstanceId = /^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$/;

function snapshotTarget(
  request: RestoreRequest,
  header: ManifestHeader,
  project: ProjectConfig,
): DatabaseTarget {
  const { spec } = request;
  const field = 'spec.target.database';
  const { instanceId } = spec.target.database;
  if (header.database.type !== 'rds-snapshot' || header.database.snapshotId === undefined) {
    throw new ValidationError(
      `spec.source: backup "${header.backupId}" holds a ${header.database.type} this version cannot restore; restore it on its own provider`,
    );
  }
  if (!rdsInstanceId.test(instanceId)) {
    throw new ValidationError(
      `${field}.instanceId: "${instanceId}" is not a valid RDS instance id (1-63 of a-z, 0-9, "-", a letter first, no "--", no trailing "-")`,
    );
  }
  // a snapshot restore creates an instance: tenancy is by name, and never over a live instance
  if (!instanceId.startsWith(`${spec.projectId}-`)) {
    throw new PolicyError(
      `${field}.instanceId: "${instanceId}" must start with "${spec.projectId}-": a restore creates instances only in its project's name space`,
    );
  }
  if (instanceId in project.databases) {
    throw new ValidationError(
      `${field}.instanceId: "${instanceId}" is a configured (live) instance of project "${spec.projectId}"; a snapshot restore creates a NEW instance: choose a new id, e.g. "${spec.projectId}-clone"`,
    );
  }
  if (spec.target.database.databaseName !== undefined) {
    throw new ValidationError(
      `${field}.databaseName: a snapshot restore brings back the whole instance (its database is "${header.database.databaseName ?? '?'}"); omit databaseName`,
    );
  }
  return {
    kind: 'snapshot',
    instanceId,
    databaseName: header.database.databaseName ?? '',
    snapshotId: header.database.snapshotId,
  };
}

function dumpTarget(
  request: RestoreRequest,
  project: ProjectConfig,
  provider: Provider,
  timestamp: string,
): DatabaseTarget {
  const { spec } = request;
  const db = allowedDatabase(
    spec.projectId,
    project,
    spec.target.database.instanceId,
    'spec.target.database.instanceId',
  );
  const databaseName =
    spec.target.database.databaseName ??
    `${spec.projectId}_${spec.environment}_${timestamp}`.replace(/-/g, '_');
  const conn = pgTarget(spec.projectId, provider, spec.target.database.instanceId, db);
  return {
    kind: 'dump',
    instanceId: spec.target.database.instanceId,
    databaseName,
    conn: { ...conn, database: databaseName },
  };
}

async function backupIdOf(ctx: EngineContext, request: RestoreRequest): Promise<string> {
  const { source, projectId, environment } = request.spec;
  if (source.backupId !== undefined) return source.backupId;
  const name = source.backupRequestName ?? '';
  if (/-backup-\d{8}-\d{6}$/.test(name)) return name;
  const rows = await ctx.catalog.listBackups({ projectId, environment, limit: 10000 });
  const row = rows.find(
    (r) =>
      r.crName === name &&
      (request.metadata.namespace === undefined || r.crNamespace === request.metadata.namespace),
  );
  if (!row)
    throw new ValidationError(
      `spec.source.backupRequestName: no backup of BackupRequest "${name}" is recorded in the catalog; name the backup by spec.source.backupId`,
    );
  return row.backupId;
}

function planTarget(
  ctx: EngineContext,
  request: RestoreRequest,
  header: ManifestHeader,
  timestamp: string,
): Omit<Target, 'store'> & { storeName: string } {
  const { spec } = request;
  if (spec.target.mode === 'in-place') {
    throw new ValidationError(
      'spec.target.mode: in-place restore is not supported yet; restore into a new database and bucket (mode: new)',
    );
  }
  const project = projectOf(ctx.config, spec.projectId);
  const provider = providerFor(project, undefined);
  const dbType = header.database.type === 'pg-dump' ? 'dump' : 'snapshot';
  checkProvider(provider, dbType);
  checkProjectProvider(ctx.config, spec.projectId, provider);
  if (header.projectId !== spec.projectId) {
    throw new PolicyError(
      `spec.source: backup "${header.backupId}" belongs to project "${header.projectId}", not "${spec.projectId}"`,
    );
  }
  const database =
    dbType === 'dump'
      ? dumpTarget(request, project, provider, timestamp)
      : snapshotTarget(request, header, project);
  const bucket = allowedBucket(
    ctx.config,
    spec.projectId,
    spec.target.documentLibrary.bucket,
    'spec.target.documentLibrary.bucket',
  );
  if (bucket.bucket === header.documentLibrary.sourceBucket) {
    throw new ValidationError(
      `spec.target.documentLibrary.bucket: "${bucket.bucket}" is the application's live bucket; restore into a new bucket (in-place restore comes later)`,
    );
  }
  return {
    database,
    storeName: bucket.storeName,
    bucket: bucket.bucket,
    prefix: spec.target.documentLibrary.prefix ?? '',
  };
}

async function requireEmptyTarget(target: Target): Promise<void> {
  if (!(await target.store.bucketExists(target.bucket))) {
    await target.store.createBucket(target.bucket);
    return;
  }
  const page = await target.store.list(target.bucket, target.prefix === '' ? '' : `${target.prefix}/`, {
    limit: 1,
  });
  if (page.objects.length > 0) {
    throw new ValidationError(
      `spec.target.documentLibrary: ${target.bucket}/${target.prefix} already holds objects (e.g. "${page.objects[0]?.key ?? ''}"); restores go into an empty bucket or prefix`,
    );
  }
}

async function restoreDocuments(
  ctx: EngineContext,
  located: LocatedBackup,
  target: Target,
  signal: AbortSignal,
): Promise<{ objectCount: number; totalSize: number }> {
  const dl = located.header.documentLibrary;
  const progress = new ProgressTracker('documentLibrary', ctx.onProgress);
  progress.setTotals(dl.objectCount, dl.totalSize);
  const body = await located.store.get(located.bucket, dl.entries.key);
  const result = { objectCount: 0, totalSize: 0 };
  const from = { store: located.store, bucket: located.bucket };
  const to = { store: target.store, bucket: target.bucket };
  await forEachLimit(
    readEntries(body, dl.entries.checksum, `${located.bucket}/${dl.entries.key}`),
    ctx.config.engine.concurrency,
    async (entry) => {
      const key = documentKey(target.prefix, entry.key);
      const copied = await copyObject({ ...from, key: entry.storedKey }, { ...to, key }, entry.size);
      if (copied.sha256 !== entry.sha256) {
        throw new IntegrityError(
          `document "${entry.key}" (stored as ${located.bucket}/${entry.storedKey}): restored bytes hash to ${copied.sha256}, the manifest says ${entry.sha256}; run verify --deep on the backup`,
        );
      }
      result.objectCount++;
      result.totalSize += entry.size;
      progress.add(1, entry.size);
    },
    signal,
  ).finally(() => body.destroy());
  progress.finish();
  return result;
}

/** What a restore created, so a failed one removes exactly that. */
interface Created {
  database?: PgConnection | undefined;
  instance?: { projectId: string; instanceId: string } | undefined;
}

async function undo(ctx: EngineContext, target: Target, created: Created): Promise<void> {
  try {
    for await (const object of listAll({
      store: target.store,
      bucket: target.bucket,
      prefix: target.prefix === '' ? '' : `${target.prefix}/`,
    })) {
      await target.store.delete(target.bucket, object.key);
    }
    if (created.database !== undefined) {
      const admin = clientFor(created.database, 'postgres');
      await admin.connect();
      try {
        await admin.query(
          `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(created.database.database)} WITH (FORCE)`,
        );
      } finally {
        await admin.end();
      }
    }
    if (created.instance !== undefined) {
      await snapshotsFor(ctx, created.instance.projectId).deleteRestoredInstance(created.instance.instanceId);
    }
  } catch (err) {
    ctx.log.warn(`could not remove everything the failed restore created: ${String(err)}`);
  }
}

function dumpChecksum(database: {
  checksum?: string | undefined;
  size: number;
}): { sha256: string; size: number } | undefined {
  const sha256 = database.checksum?.replace(/^sha256:/, '');
  return sha256 === undefined ? undefined : { sha256, size: database.size };
}

async function restoreDump(
  ctx: EngineContext,
  located: LocatedBackup,
  conn: PgConnection,
  run: { created: Created; signal: AbortSignal },
): Promise<void> {
  const artifact = located.header.database.artifact;
  if (!artifact)
    throw new ValidationError(`backup "${located.header.backupId}" has no database dump to restore`);
  await restoreFromStore({
    conn,
    pgBin: ctx.config.engine.pgBin ?? process.env.LC2_PG_BIN,
    store: located.store,
    bucket: artifact.bucket,
    key: artifact.key,
    scratchDir: ctx.config.engine.scratchDir,
    jobs: ctx.config.engine.restoreJobs,
    loadWhileDownloading: ctx.config.engine.loadWhileDownloading,
    // the dump is checked against the manifest on its way in (older manifests without a checksum: not)
    expected: dumpChecksum(located.header.database),
    // only a database this run created is ever dropped by the undo
    onCreated: () => {
      run.created.database = conn;
    },
    signal: run.signal,
  });
}

async function restoreSnapshot(
  ctx: EngineContext,
  located: LocatedBackup,
  target: Extract<DatabaseTarget, { kind: 'snapshot' }>,
  ids: { restoreId: string; created: Created; signal: AbortSignal },
): Promise<{ host: string; port: number } | undefined> {
  const { header } = located;
  const snapshots = snapshotsFor(ctx, header.projectId);
  const { instance, adopted } = await snapshots.restoreInstance({
    snapshotId: target.snapshotId,
    instanceId: target.instanceId,
    tags: {
      [ownershipTags.project]: header.projectId,
      [ownershipTags.environment]: header.environment,
      [ownershipTags.backupId]: header.backupId,
      [ownershipTags.restoreId]: ids.restoreId,
      [ownershipTags.managedBy]: 'lc2-backup',
    },
  });
  if (!adopted) ids.created.instance = { projectId: header.projectId, instanceId: target.instanceId };
  ctx.log.info(
    `${adopted ? 'adopted the instance already restored' : 'restoring snapshot'} ${target.snapshotId} into the new instance ${target.instanceId} (${snapshots.name}); waiting until it is available`,
    { restoreId: ids.restoreId },
  );
  const progress = new ProgressTracker('database', ctx.onProgress);
  const ready = await snapshots.waitForInstance(instance.instanceId, {
    signal: ids.signal,
    onProgress: (percent) => {
      progress.setBytes(Math.round((header.database.size * percent) / 100));
    },
  });
  progress.finish();
  return ready.endpoint;
}

type DatabaseStep = (signal: AbortSignal) => Promise<{ host: string; port: number } | undefined>;

/**
 * The database half of a restore, ready to start. A dump goes into a NEW database: one that
 * exists is refused here, before either half starts, so a failure (and the undo after it) never
 * touches a database that was there before.
 */
async function databaseStep(
  ctx: EngineContext,
  located: LocatedBackup,
  db: DatabaseTarget,
  ids: { restoreId: string; created: Created },
): Promise<DatabaseStep> {
  if (db.kind === 'snapshot') return (signal) => restoreSnapshot(ctx, located, db, { ...ids, signal });
  if (!located.header.database.artifact)
    throw new ValidationError(`backup "${located.header.backupId}" has no database dump to restore`);
  const conn = await connectionFor(ctx, located.header.projectId, db.conn);
  await requireNewDatabase(conn);
  return async (signal) => {
    await restoreDump(ctx, located, conn, { created: ids.created, signal });
    return undefined;
  };
}

/**
 * Runs two steps at the same time. When one fails, the other is stopped through its signal;
 * both have settled (nothing in flight) before the first failure is thrown, so the caller's undo
 * does not race a step still writing.
 */
export async function bothOrNeither<A, B>(
  first: (signal: AbortSignal) => Promise<A>,
  second: (signal: AbortSignal) => Promise<B>,
  parent?: AbortSignal,
): Promise<[A, B]> {
  const stop = new AbortController();
  const signal = parent === undefined ? stop.signal : AbortSignal.any([parent, stop.signal]);
  const failure: { error?: unknown } = {};
  const watched = async <T>(step: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    try {
      return await step(signal);
    } catch (err) {
      if (!('error' in failure)) {
        failure.error = err;
        stop.abort(err);
      }
      throw err;
    }
  };
  const [a, b] = await Promise.allSettled([watched(first), watched(second)]);
  if ('error' in failure) throw failure.error;
  if (a.status === 'rejected' || b.status === 'rejected')
    throw new Error('unreachable: a step failed unseen');
  return [a.value, b.value];
}

export async function runRestore(ctx: EngineContext, request: RestoreRequest): Promise<RestoreResult> {
  const started = nowOf(ctx);
  const backupId = await backupIdOf(ctx, request);
  const located = await locateBackup(ctx, backupId);
  const { name, namespace } = request.metadata;
  const restoreId = restoreIdFor(
    backupId,
    started,
    name === undefined ? undefined : `${namespace ?? ''}/${name}`,
  );
  const planned = planTarget(ctx, request, located.header, backupTimestamp(started).replace('-', ''));
  const target: Target = { ...planned, store: ctx.stores.get(planned.storeName) };
  const db = target.database;
  await requireEmptyTarget(target);
  await ctx.catalog.recordRestoreStarted({
    restoreId,
    backupId,
    projectId: request.spec.projectId,
    environment: request.spec.environment,
    ...(request.metadata.name !== undefined && request.metadata.namespace !== undefined
      ? { crName: request.metadata.name, crNamespace: request.metadata.namespace }
      : {}),
    targetDbInstanceId: db.instanceId,
    targetDatabase: db.databaseName,
    targetBucket: target.bucket,
    targetPrefix: target.prefix,
    startTime: started,
  });
  const created: Created = {};
  let running = false;
  try {
    const restoreDatabase = await databaseStep(ctx, located, db, { restoreId, created });
    ctx.log.info(
      `restoring the database into ${db.instanceId}/${db.databaseName} and, at the same time, ${located.header.documentLibrary.objectCount} documents into ${target.bucket}/${target.prefix}`,
      { restoreId },
    );
    running = true;
    const [endpoint, docs] = await bothOrNeither(
      restoreDatabase,
      (signal) => restoreDocuments(ctx, located, target, signal),
      ctx.signal,
    );
    await ctx.catalog.recordRestoreSucceeded(restoreId, {
      restoredObjectCount: docs.objectCount,
      restoredTotalSizeBytes: docs.totalSize,
    });
    return {
      restoreId,
      backupId,
      database: {
        instanceId: db.instanceId,
        databaseName: db.databaseName,
        ...(endpoint === undefined ? {} : { endpoint }),
      },
      documentLibrary: { bucket: target.bucket, prefix: target.prefix, ...docs },
      durationMs: nowOf(ctx).getTime() - started.getTime(),
    };
  } catch (err) {
    // before the two steps started nothing was created (a refused database is never dropped)
    if (running) await undo(ctx, target, created);
    await ctx.catalog
      .recordRestoreFailed(restoreId, err instanceof Error ? err.message : String(err))
      .catch(() => undefined);
    throw err;
  }
}
