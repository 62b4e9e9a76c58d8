// A backup: one recovery point for an application. Database first, then the document library
// (the library may be newer than the database, never older), then the manifest — written last,
// so a backup without one is incomplete and never listed as restorable. A request that already
// has a valid manifest is adopted, not repeated.
import type { BackupRequest } from '../../../api/v1alpha1/backupRequest.ts';
import { backupDocuments, listAll } from '../../components/documentLibrary/copy.ts';
import { keyMatcher } from '../../components/documentLibrary/patterns.ts';
import { NotFoundError } from '../../errors/index.ts';
import { EntriesWriter } from '../../format/entries.ts';
import { encodeManifest, FORMAT_VERSION, type ManifestHeader } from '../../format/manifest.ts';
import type { ObjectStore } from '../../providers/types.ts';
import { nowOf, type EngineContext } from '../context.ts';
import { recordHistory } from '../history.ts';
import { manifestPath, manifestSummary, readManifest } from '../manifests.ts';
import { ProgressTracker } from '../progress.ts';
import { backupDatabase, removeCreatedDatabaseArtifacts, type CreatedDatabaseArtifacts } from './database.ts';
import { planBackup, type BackupPlan } from './plan.ts';

export interface BackupResult {
  header: ManifestHeader;
  manifestPath: string;
  /** True when a manifest already existed and the request was adopted instead of repeated. */
  adopted: boolean;
  durationMs: number;
}

export async function runBackup(ctx: EngineContext, request: BackupRequest): Promise<BackupResult> {
  const plan = planBackup(ctx.config, request, nowOf(ctx));
  const source = ctx.stores.get(plan.source.storeName);
  const destination = ctx.stores.get(plan.destination.storeName);
  const path = manifestPath(destination, plan.destination.bucket, plan.layout.manifestKey);

  if (
    (await destination.bucketExists(plan.destination.bucket)) &&
    (await destination.head(plan.destination.bucket, plan.layout.manifestKey))
  ) {
    const header = await readManifest(destination, plan.destination.bucket, plan.layout.manifestKey);
    await recordHistory(ctx, `backup ${plan.backupId}`, () =>
      ctx.catalog.upsertFromManifest({ ...manifestSummary(header, path), ...plan.request }),
    );
    ctx.log.info(`backup ${plan.backupId} already completed; adopting its manifest`, { manifest: path });
    return { header, manifestPath: path, adopted: true, durationMs: 0 };
  }

  await recordHistory(ctx, `the start of backup ${plan.backupId}`, () =>
    ctx.catalog.recordBackupStarted({
      backupId: plan.backupId,
      projectId: plan.projectId,
      environment: plan.environment,
      ...plan.request,
      provider: plan.provider,
      dbType: plan.database.type,
      dbInstanceId: plan.database.instanceId,
      dlSourceBucket: plan.source.bucket,
      dlDestinationBucket: plan.destination.bucket,
      dlDestinationPrefix: plan.layout.documentsPrefix,
      dlManifestPath: path,
      startTime: plan.startedAt,
    }),
  );
  const created: CreatedDatabaseArtifacts = {};
  try {
    const header = await execute(ctx, plan, { source, destination }, created);
    const durationMs = Date.now() - plan.startedAt.getTime();
    await recordHistory(ctx, `the success of backup ${plan.backupId}`, () =>
      ctx.catalog.recordBackupSucceeded(plan.backupId, {
        dbSnapshotId: header.database.snapshotId ?? header.database.artifact?.key,
        dbSnapshotSizeBytes: header.database.size,
        dlObjectCount: header.documentLibrary.objectCount,
        dlTotalSizeBytes: header.documentLibrary.totalSize,
        manifestChecksum: header.checksum.replace(/^sha256:/, ''),
      }),
    );
    return { header, manifestPath: path, adopted: false, durationMs };
  } catch (err) {
    await removePartial(ctx, plan, destination);
    await removeCreatedDatabaseArtifacts(ctx, plan, created);
    const reason = err instanceof Error ? err.message : String(err);
    await ctx.catalog.recordBackupFailed(plan.backupId, reason).catch((e: unknown) => {
      ctx.log.warn(`could not record the failure of ${plan.backupId} in the catalog`, { error: String(e) });
    });
    throw err;
  }
}

async function requireBucket(store: ObjectStore, bucket: string, field: string): Promise<void> {
  if (!(await store.bucketExists(bucket))) {
    throw new NotFoundError(
      `${field}: bucket "${bucket}" does not exist in ${store.name}; create it or fix the name`,
    );
  }
}

async function execute(
  ctx: EngineContext,
  plan: BackupPlan,
  stores: { source: ObjectStore; destination: ObjectStore },
  created: CreatedDatabaseArtifacts,
): Promise<ManifestHeader> {
  const { source, destination } = stores;
  await requireBucket(source, plan.source.bucket, 'spec.documentLibrary.sourceBucket');
  await requireBucket(destination, plan.destination.bucket, 'spec.documentLibrary.destinationBucket');
  ctx.signal?.throwIfAborted();
  const database = await backupDatabase(ctx, plan, destination, created);
  ctx.signal?.throwIfAborted();

  ctx.log.info(`copying the document library ${plan.source.bucket}`, {
    backupId: plan.backupId,
    excluded: plan.excludedPatterns.length,
  });
  const entries = new EntriesWriter(destination, plan.destination.bucket, plan.layout.entriesKey);
  let docs;
  try {
    docs = await backupDocuments({
      source: { store: source, bucket: plan.source.bucket, prefix: '' },
      destination: {
        store: destination,
        bucket: plan.destination.bucket,
        prefix: plan.layout.documentsPrefix,
      },
      excluded: keyMatcher(plan.excludedPatterns),
      concurrency: ctx.config.engine.concurrency,
      progress: new ProgressTracker('documentLibrary', ctx.onProgress),
      onEntry: (entry) => entries.write(entry),
      signal: ctx.signal,
    });
  } catch (err) {
    entries.abort();
    throw err;
  }
  const summary = await entries.close();

  const { header, bytes } = encodeManifest({
    formatVersion: FORMAT_VERSION,
    tool: { name: 'lc2-backup', version: ctx.toolVersion ?? '0.0.0' },
    backupId: plan.backupId,
    projectId: plan.projectId,
    environment: plan.environment,
    provider: plan.provider,
    timestamp: plan.startedAt.toISOString(),
    completedAt: nowOf(ctx).toISOString(),
    ...(ctx.initiator === undefined ? {} : { initiator: ctx.initiator }),
    database,
    documentLibrary: {
      sourceBucket: plan.source.bucket,
      sourceStore: source.name,
      bucket: plan.destination.bucket,
      store: destination.name,
      prefix: plan.layout.documentsPrefix,
      objectCount: docs.objectCount,
      totalSize: docs.totalSize,
      excludedPatterns: plan.excludedPatterns,
      excludedCount: docs.excludedCount,
      excludedSize: docs.excludedSize,
      entries: { key: plan.layout.entriesKey, count: summary.count, checksum: summary.checksum },
    },
  });
  await destination.put(plan.destination.bucket, plan.layout.manifestKey, bytes, {
    contentType: 'application/json',
    size: bytes.length,
  });
  return header;
}

// A failed backup leaves no half-written recovery point behind: what this run wrote under the
// backup's root goes. Documents under a custom prefix outside the root are left (that prefix may
// hold other data) and named in a warning.
async function removePartial(ctx: EngineContext, plan: BackupPlan, store: ObjectStore): Promise<void> {
  try {
    let removed = 0;
    for await (const object of listAll({
      store,
      bucket: plan.destination.bucket,
      prefix: `${plan.layout.root}/`,
    })) {
      await store.delete(plan.destination.bucket, object.key);
      removed++;
    }
    if (removed > 0) ctx.log.warn(`removed ${removed} objects of the failed backup ${plan.backupId}`);
    if (!plan.layout.documentsPrefix.startsWith(`${plan.layout.root}/`)) {
      ctx.log.warn(
        `documents copied under ${plan.destination.bucket}/${plan.layout.documentsPrefix} were left in place; remove them if unwanted`,
      );
    }
  } catch (err) {
    ctx.log.warn(`could not remove the partial backup ${plan.backupId}: ${String(err)}`);
  }
}
