// The database step of a backup, first of the recovery point: a pg_dump streamed into the
// destination bucket (`dump`, every provider), or the provider's native snapshot (`snapshot`,
// aws: RDS) with a deterministic id, adopted on retry, waited for with progress. Returns the
// manifest's `database` section.
import { dumpToStore, probeDatabase } from '../../components/postgres/postgres.ts';
import { NotFoundError, ValidationError } from '../../errors/index.ts';
import { databaseSnapshotId } from '../../format/layout.ts';
import { withSpan } from '../../observability/tracing.ts';
import type { DatabaseArtifact } from '../../format/manifest.ts';
import { ownershipTags, type ObjectStore } from '../../providers/types.ts';
import { nowOf, type EngineContext } from '../context.ts';
import { connectionFor, snapshotsFor } from '../databases.ts';
import { ProgressTracker } from '../progress.ts';
import type { BackupPlan } from './plan.ts';

/** What the step created, so a failed backup can remove it. */
export interface CreatedDatabaseArtifacts {
  snapshotId?: string | undefined;
}

async function dumpDatabase(
  ctx: EngineContext,
  plan: BackupPlan,
  destination: ObjectStore,
): Promise<DatabaseArtifact> {
  const conn = await connectionFor(ctx, plan.projectId, plan.database.conn);
  const { serverVersion } = await probeDatabase(conn);
  ctx.signal?.throwIfAborted();
  const started = nowOf(ctx);
  const progress = new ProgressTracker('database', ctx.onProgress);
  const dump = await dumpToStore({
    conn,
    pgBin: ctx.config.engine.pgBin ?? process.env.LC2_PG_BIN,
    signal: ctx.signal,
    store: destination,
    bucket: plan.destination.bucket,
    key: plan.layout.databaseDumpKey,
    onProgress: (bytes) => {
      progress.setBytes(bytes);
    },
  });
  progress.finish();
  return {
    type: 'pg-dump',
    instanceId: plan.database.instanceId,
    databaseName: conn.database,
    engine: 'postgres',
    engineVersion: serverVersion,
    size: dump.size,
    checksum: `sha256:${dump.sha256}`,
    artifact: {
      bucket: plan.destination.bucket,
      key: plan.layout.databaseDumpKey,
      format: 'custom',
      compression: 'zstd',
      uncompressedSize: dump.uncompressedSize,
    },
    startedAt: started.toISOString(),
    completedAt: nowOf(ctx).toISOString(),
  };
}

async function snapshotDatabase(
  ctx: EngineContext,
  plan: BackupPlan,
  created: CreatedDatabaseArtifacts,
): Promise<DatabaseArtifact> {
  const snapshots = snapshotsFor(ctx, plan.projectId);
  const field = 'spec.database.instanceId';
  const instance = await snapshots.describeInstance(plan.database.instanceId).catch((err: unknown) => {
    throw err instanceof NotFoundError ? new NotFoundError(`${field}: ${err.message}`, { cause: err }) : err;
  });
  if (instance.engine !== 'postgres') {
    throw new ValidationError(
      `${field}: instance "${instance.instanceId}" runs ${instance.engine}, not PostgreSQL; lc2-backup backs up PostgreSQL instances`,
    );
  }
  const snapshotId = databaseSnapshotId(plan.backupId);
  const started = nowOf(ctx);
  const { snapshot, adopted } = await snapshots.createSnapshot({
    instanceId: plan.database.instanceId,
    snapshotId,
    tags: {
      [ownershipTags.project]: plan.projectId,
      [ownershipTags.environment]: plan.environment,
      [ownershipTags.backupId]: plan.backupId,
      [ownershipTags.managedBy]: 'lc2-backup',
    },
  });
  created.snapshotId = snapshotId;
  ctx.log.info(
    `${adopted ? 'adopted the existing' : 'created'} snapshot ${snapshotId} of ${plan.database.instanceId} in ${snapshots.name}; waiting until it is available`,
    { backupId: plan.backupId },
  );
  const progress = new ProgressTracker('database', ctx.onProgress);
  progress.setTotals(undefined, instance.allocatedBytes);
  const ready = await snapshots.waitForSnapshot(snapshotId, {
    signal: ctx.signal,
    onProgress: (percent) => {
      progress.setBytes(Math.round((instance.allocatedBytes * percent) / 100));
    },
  });
  progress.finish();
  return {
    type: 'rds-snapshot',
    instanceId: plan.database.instanceId,
    databaseName: plan.database.conn.database,
    snapshotId,
    engine: 'postgres',
    engineVersion: ready.engineVersion === '' ? instance.engineVersion : ready.engineVersion,
    size: ready.sizeBytes,
    startedAt: (snapshot.createdAt ?? started).toISOString(),
    completedAt: nowOf(ctx).toISOString(),
  };
}

export function backupDatabase(
  ctx: EngineContext,
  plan: BackupPlan,
  destination: ObjectStore,
  created: CreatedDatabaseArtifacts,
): Promise<DatabaseArtifact> {
  ctx.log.info(`backing up database instance ${plan.database.instanceId} (${plan.database.type})`, {
    backupId: plan.backupId,
  });
  return withSpan(
    'backup.database',
    { 'lc2.backup_id': plan.backupId, 'lc2.database.type': plan.database.type },
    () =>
      plan.database.type === 'snapshot'
        ? snapshotDatabase(ctx, plan, created)
        : dumpDatabase(ctx, plan, destination),
  );
}

/** Removes the snapshot a failed backup took (or adopted): without a manifest it is no backup. */
export async function removeCreatedDatabaseArtifacts(
  ctx: EngineContext,
  plan: BackupPlan,
  created: CreatedDatabaseArtifacts,
): Promise<void> {
  if (created.snapshotId === undefined) return;
  try {
    await snapshotsFor(ctx, plan.projectId).deleteSnapshot(created.snapshotId);
    ctx.log.warn(`removed the snapshot ${created.snapshotId} of the failed backup ${plan.backupId}`);
  } catch (err) {
    ctx.log.warn(
      `could not remove the snapshot ${created.snapshotId} of the failed backup ${plan.backupId}: ${String(err)}; delete it by hand`,
    );
  }
}
