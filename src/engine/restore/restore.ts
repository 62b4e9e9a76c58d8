// Restore: take one recovery point back as a unit, into a NEW database and a new bucket/prefix
// (a safe clone). Every restored document is checked against its manifest SHA-256. A failed
// restore removes what it created (the new database, the restored objects).
import type { RestoreRequest } from '../../../api/v1alpha1/restoreRequest.ts';
import { clientFor, restoreFromStore, type PgConnection } from '../../components/postgres/postgres.ts';
import { copyObject, forEachLimit, listAll } from '../../components/documentLibrary/copy.ts';
import { resolveSecret } from '../../config/config.ts';
import { allowedBucket, allowedDatabase, projectOf, providerFor } from '../../config/policy.ts';
import { IntegrityError, PolicyError, ValidationError } from '../../errors/index.ts';
import { readEntries } from '../../format/entries.ts';
import { documentKey, restoreId as restoreIdFor } from '../../format/layout.ts';
import type { ManifestHeader } from '../../format/manifest.ts';
import type { ObjectStore } from '../../providers/types.ts';
import { nowOf, type EngineContext } from '../context.ts';
import { locateBackup, type LocatedBackup } from '../manifests.ts';
import { ProgressTracker } from '../progress.ts';
import { checkProvider } from '../backup/plan.ts';
import pg from 'pg';

export interface RestoreResult {
  restoreId: string;
  backupId: string;
  database: { instanceId: string; databaseName: string };
  documentLibrary: { bucket: string; prefix: string; objectCount: number; totalSize: number };
  durationMs: number;
}

interface Target {
  conn: PgConnection;
  store: ObjectStore;
  bucket: string;
  prefix: string;
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
  checkProvider(providerFor(project, undefined), 'dump');
  if (header.projectId !== spec.projectId) {
    throw new PolicyError(
      `spec.source: backup "${header.backupId}" belongs to project "${header.projectId}", not "${spec.projectId}"`,
    );
  }
  const db = allowedDatabase(
    spec.projectId,
    project,
    spec.target.database.instanceId,
    'spec.target.database.instanceId',
  );
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
  const databaseName =
    spec.target.database.databaseName ??
    `${spec.projectId}_${spec.environment}_${timestamp}`.replace(/-/g, '_');
  const password =
    db.password === undefined
      ? undefined
      : resolveSecret(
          db.password,
          `projects.${spec.projectId}.databases.${spec.target.database.instanceId}.password`,
        );
  return {
    conn: {
      instanceId: spec.target.database.instanceId,
      host: db.host,
      port: db.port,
      user: db.user,
      password,
      database: databaseName,
    },
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
  );
  progress.finish();
  return result;
}

async function undo(ctx: EngineContext, target: Target, createdDatabase: boolean): Promise<void> {
  try {
    for await (const object of listAll({
      store: target.store,
      bucket: target.bucket,
      prefix: target.prefix === '' ? '' : `${target.prefix}/`,
    })) {
      await target.store.delete(target.bucket, object.key);
    }
    if (createdDatabase) {
      const admin = clientFor(target.conn, 'postgres');
      await admin.connect();
      try {
        await admin.query(
          `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(target.conn.database)} WITH (FORCE)`,
        );
      } finally {
        await admin.end();
      }
    }
  } catch (err) {
    ctx.log.warn(`could not remove everything the failed restore created: ${String(err)}`);
  }
}

export async function runRestore(ctx: EngineContext, request: RestoreRequest): Promise<RestoreResult> {
  const started = nowOf(ctx);
  const backupId = await backupIdOf(ctx, request);
  const located = await locateBackup(ctx, backupId);
  const restoreId = restoreIdFor(backupId, started);
  const planned = planTarget(ctx, request, located.header, restoreId.slice(-15).replace('-', ''));
  const target: Target = { ...planned, store: ctx.stores.get(planned.storeName) };
  await requireEmptyTarget(target);
  await ctx.catalog.recordRestoreStarted({
    restoreId,
    backupId,
    projectId: request.spec.projectId,
    environment: request.spec.environment,
    ...(request.metadata.name !== undefined && request.metadata.namespace !== undefined
      ? { crName: request.metadata.name, crNamespace: request.metadata.namespace }
      : {}),
    targetDbInstanceId: target.conn.instanceId,
    targetDatabase: target.conn.database,
    targetBucket: target.bucket,
    targetPrefix: target.prefix,
    startTime: started,
  });
  let createdDatabase = false;
  try {
    const artifact = located.header.database.artifact;
    if (!artifact) throw new ValidationError(`backup "${backupId}" has no database dump to restore`);
    ctx.log.info(`restoring the database into ${target.conn.instanceId}/${target.conn.database}`, {
      restoreId,
    });
    createdDatabase = true;
    await restoreFromStore({
      conn: target.conn,
      pgBin: ctx.config.engine.pgBin ?? process.env.LC2_PG_BIN,
      store: located.store,
      bucket: artifact.bucket,
      key: artifact.key,
      scratchDir: ctx.config.engine.scratchDir,
      jobs: ctx.config.engine.restoreJobs,
    });
    ctx.log.info(
      `restoring ${located.header.documentLibrary.objectCount} documents into ${target.bucket}/${target.prefix}`,
      { restoreId },
    );
    const docs = await restoreDocuments(ctx, located, target);
    await ctx.catalog.recordRestoreSucceeded(restoreId, {
      restoredObjectCount: docs.objectCount,
      restoredTotalSizeBytes: docs.totalSize,
    });
    return {
      restoreId,
      backupId,
      database: { instanceId: target.conn.instanceId, databaseName: target.conn.database },
      documentLibrary: { bucket: target.bucket, prefix: target.prefix, ...docs },
      durationMs: nowOf(ctx).getTime() - started.getTime(),
    };
  } catch (err) {
    if (!(err instanceof ValidationError && /already exists/.test(err.message)))
      await undo(ctx, target, createdDatabase);
    await ctx.catalog
      .recordRestoreFailed(restoreId, err instanceof Error ? err.message : String(err))
      .catch(() => undefined);
    throw err;
  }
}
