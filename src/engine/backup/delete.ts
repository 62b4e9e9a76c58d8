// Removing a stored backup (a BackupRequest deleted with deletionPolicy: Delete). The manifest
// goes first: from that moment no restore or verify takes the backup for complete, and a crash
// part-way leaves only objects a re-run removes (every name derives from the backup id). Then
// the entries, the dump and the documents (under the backup's root, or under the request's own
// destinationPrefix), then the native snapshot; then the catalog row becomes Deleted (the
// history stays).
import type { BackupRequest } from '../../../api/v1alpha1/backupRequest.ts';
import { listAll } from '../../components/documentLibrary/copy.ts';
import { databaseSnapshotId } from '../../format/layout.ts';
import type { EngineContext } from '../context.ts';
import { snapshotsFor } from '../databases.ts';
import { readManifest } from '../manifests.ts';
import { planBackup } from './plan.ts';

export interface DeletedBackup {
  backupId: string;
  removedObjects: number;
  snapshotId?: string | undefined;
}

/** Removes the backup a request made (started at `startedAt`); idempotent. */
export async function deleteBackup(
  ctx: EngineContext,
  request: BackupRequest,
  startedAt: Date,
): Promise<DeletedBackup> {
  const plan = planBackup(ctx.config, request, startedAt);
  const store = ctx.stores.get(plan.destination.storeName);
  const { bucket } = plan.destination;
  const { layout } = plan;
  let snapshotId: string | undefined =
    plan.database.type === 'snapshot' ? databaseSnapshotId(plan.backupId) : undefined;
  if ((await store.bucketExists(bucket)) && (await store.head(bucket, layout.manifestKey))) {
    const header = await readManifest(store, bucket, layout.manifestKey);
    snapshotId = header.database.snapshotId ?? snapshotId;
    await store.delete(bucket, layout.manifestKey);
  }
  let removedObjects = 0;
  const prefixes = [`${layout.root}/`];
  if (!layout.documentsPrefix.startsWith(`${layout.root}/`)) prefixes.push(layout.documentsPrefix);
  for (const prefix of prefixes) {
    if (!(await store.bucketExists(bucket))) break;
    for await (const object of listAll({ store, bucket, prefix })) {
      ctx.signal?.throwIfAborted();
      await store.delete(bucket, object.key);
      removedObjects++;
    }
  }
  if (snapshotId !== undefined) await snapshotsFor(ctx, plan.projectId).deleteSnapshot(snapshotId);
  ctx.log.info(
    `deleted backup ${plan.backupId}: ${removedObjects} objects from ${bucket}${snapshotId === undefined ? '' : ` and snapshot ${snapshotId}`}`,
  );
  if (await ctx.catalog.getBackup(plan.backupId)) await ctx.catalog.markDeleted(plan.backupId);
  return { backupId: plan.backupId, removedObjects, snapshotId };
}
