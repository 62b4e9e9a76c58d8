// Recording runs in the history catalog. For the CLI the catalog is part of the job (`list`
// reads it, so a backup that cannot be recorded fails). The controller must not stop a backup
// because the catalog is down: with `tolerateCatalogOutage`, an unreachable catalog is logged
// and the run goes on; the controller archives the outcome later (`archiveBackup`,
// `archiveRestore`), from the manifest in the bucket and the request's own status, and
// retries until the catalog answers.
import type { BackupRequest } from '../../api/v1alpha1/backupRequest.ts';
import { CatalogUnavailableError } from '../catalog/errors.ts';
import type { BackupRecord } from '../catalog/types.ts';
import { isRetryable, NotFoundError } from '../errors/index.ts';
import type { EngineContext } from './context.ts';
import { planBackup } from './backup/plan.ts';
import { manifestPath, manifestSummary, readManifest } from './manifests.ts';

/** True for errors that mean "the catalog cannot be reached right now". */
export function isCatalogOutage(err: unknown): boolean {
  if (err instanceof CatalogUnavailableError || isRetryable(err)) return true;
  return err instanceof Error && /Connection terminated|connection.*(closed|ended)/i.test(err.message);
}

/**
 * Runs one catalog write; in tolerant mode an outage is logged instead of failing the run — and
 * so is a row missing because its start could not be recorded during an outage (NotFoundError):
 * archival writes the whole row later, from the manifest.
 */
export async function recordHistory(
  ctx: EngineContext,
  what: string,
  write: () => Promise<unknown>,
): Promise<void> {
  try {
    await write();
  } catch (err) {
    if (ctx.tolerateCatalogOutage !== true || !(isCatalogOutage(err) || err instanceof NotFoundError))
      throw err;
    ctx.log.warn(`the catalog is unreachable; ${what} will be recorded once it is back`, {
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

/** What a finished BackupRequest says about its run. */
export interface BackupOutcome {
  state: 'Succeeded' | 'Failed';
  backupId: string;
  startTime: Date;
  completionTime: Date;
  reason?: string | undefined;
}

const recorded = new Set(['Succeeded', 'Failed', 'ManifestMissing', 'Deleted']);

/**
 * Makes the catalog hold a finished backup's final row (idempotent): a Succeeded backup from its
 * manifest, a Failed one with its reason. Throws while the catalog is unreachable.
 */
export async function archiveBackup(
  ctx: EngineContext,
  request: BackupRequest,
  outcome: BackupOutcome,
): Promise<BackupRecord | undefined> {
  const row = await ctx.catalog.getBackup(outcome.backupId);
  if (row !== undefined && row.state === outcome.state) return row;
  if (row !== undefined && recorded.has(row.state) && outcome.state === 'Failed') return row;
  const plan = planBackup(ctx.config, request, outcome.startTime);
  const ref = { crName: request.metadata.name, crNamespace: request.metadata.namespace };
  if (outcome.state === 'Succeeded') {
    const store = ctx.stores.get(plan.destination.storeName);
    const { bucket } = plan.destination;
    const header = await readManifest(store, bucket, plan.layout.manifestKey);
    const path = manifestPath(store, bucket, plan.layout.manifestKey);
    return (await ctx.catalog.upsertFromManifest({ ...manifestSummary(header, path), ...ref })).backup;
  }
  await ctx.catalog.recordBackupStarted({
    backupId: outcome.backupId,
    projectId: plan.projectId,
    environment: plan.environment,
    ...ref,
    provider: plan.provider,
    dbType: plan.database.type,
    dbInstanceId: plan.database.instanceId,
    dlSourceBucket: plan.source.bucket,
    dlDestinationBucket: plan.destination.bucket,
    dlDestinationPrefix: plan.layout.documentsPrefix,
    startTime: outcome.startTime,
  });
  return ctx.catalog.recordBackupFailed(outcome.backupId, outcome.reason ?? 'failed');
}

/** What a finished RestoreRequest says about its run. */
export interface RestoreOutcome {
  state: 'Succeeded' | 'Failed';
  restoreId: string;
  backupId: string;
  projectId: string;
  environment: string;
  crName: string;
  crNamespace: string;
  startTime: Date;
  reason?: string | undefined;
}

/** Makes the catalog hold a finished restore's final row (idempotent). */
export async function archiveRestore(ctx: EngineContext, outcome: RestoreOutcome): Promise<void> {
  const row = await ctx.catalog.getRestore(outcome.restoreId);
  if (row !== undefined && (row.state === outcome.state || row.state === 'Failed')) return;
  if (row === undefined) {
    await ctx.catalog.recordRestoreStarted({
      restoreId: outcome.restoreId,
      backupId: outcome.backupId,
      projectId: outcome.projectId,
      environment: outcome.environment,
      crName: outcome.crName,
      crNamespace: outcome.crNamespace,
      startTime: outcome.startTime,
    });
  }
  if (outcome.state === 'Succeeded') await ctx.catalog.recordRestoreSucceeded(outcome.restoreId);
  else await ctx.catalog.recordRestoreFailed(outcome.restoreId, outcome.reason ?? 'failed');
}
