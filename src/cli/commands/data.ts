// The data commands: backup, restore, verify, list, describe, catalog rebuild.
import type { BackupRequest } from '../../../api/v1alpha1/backupRequest.ts';
import type { RestoreRequest } from '../../../api/v1alpha1/restoreRequest.ts';
import { buildResource } from '../../../api/v1alpha1/parse.ts';
import type { BackupState } from '../../catalog/types.ts';
import { runBackup } from '../../engine/backup/backup.ts';
import { humanBytes } from '../../engine/context.ts';
import { locateBackup } from '../../engine/manifests.ts';
import { rebuildCatalog } from '../../engine/rebuild.ts';
import { runRestore } from '../../engine/restore/restore.ts';
import { verifyBackup } from '../../engine/verify/verify.ts';
import { ValidationError } from '../../errors/index.ts';
import type { DatabaseArtifact } from '../../format/manifest.ts';
import { exitCodes } from '../errors.ts';
import { humanDuration } from '../../engine/units.ts';
import { openSession, type GlobalOptions, type Session } from '../session.ts';

function print(options: GlobalOptions, json: unknown, text: string): void {
  process.stdout.write(options.json === true ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
}

async function withSession(
  options: GlobalOptions,
  signal: AbortSignal | undefined,
  work: (s: Session) => Promise<number>,
): Promise<number> {
  const session = await openSession(options, signal);
  try {
    return await work(session);
  } finally {
    session.progressDone();
    await session.close();
  }
}

function rate(bytes: number, ms: number): string {
  return ms > 0 ? `${humanBytes((bytes * 1000) / ms)}/s` : '-';
}

function databaseLine(db: DatabaseArtifact): string {
  if (db.snapshotId !== undefined)
    return `snapshot ${db.snapshotId} (${humanBytes(db.size)} allocated, PostgreSQL ${db.engineVersion ?? '?'})`;
  return `${humanBytes(db.size)} stored (${humanBytes(db.artifact?.uncompressedSize ?? 0)} dumped, zstd)`;
}

export function backupCommand(
  options: GlobalOptions,
  request: BackupRequest,
  signal: AbortSignal,
): Promise<number> {
  return withSession(options, signal, async ({ ctx }) => {
    const result = await runBackup(ctx, request);
    const { header } = result;
    const dl = header.documentLibrary;
    const total = header.database.size + dl.totalSize;
    print(
      options,
      result,
      [
        `backup ${header.backupId}: ${result.adopted ? 'already completed (adopted)' : 'Succeeded'}`,
        `  database         ${header.database.instanceId}: ${databaseLine(header.database)}`,
        `  document library ${dl.sourceBucket}: ${dl.objectCount} objects, ${humanBytes(dl.totalSize)}; excluded ${dl.excludedCount} (${humanBytes(dl.excludedSize)})`,
        `  manifest         ${result.manifestPath}`,
        result.adopted
          ? ''
          : `  took ${humanDuration(result.durationMs / 1000)} (${rate(total, result.durationMs)})`,
      ]
        .filter((l) => l !== '')
        .join('\n'),
    );
    return exitCodes.ok;
  });
}

interface RestoreArgs {
  backupId?: string | undefined;
  request?: RestoreRequest | undefined;
  toInstance?: string | undefined;
  toDatabase?: string | undefined;
  toBucket?: string | undefined;
  toPrefix?: string | undefined;
}

export function restoreCommand(
  options: GlobalOptions,
  args: RestoreArgs,
  signal: AbortSignal,
): Promise<number> {
  return withSession(options, signal, async ({ ctx }) => {
    let request = args.request;
    if (request === undefined) {
      if (args.backupId === undefined)
        throw new ValidationError('restore: give a backup id (or a RestoreRequest with -f)');
      const { header } = await locateBackup(ctx, args.backupId);
      request = buildResource(
        'RestoreRequest',
        {
          projectId: header.projectId,
          environment: header.environment,
          source: { backupId: args.backupId },
          target: {
            database: {
              instanceId: args.toInstance,
              ...(args.toDatabase === undefined ? {} : { databaseName: args.toDatabase }),
            },
            documentLibrary: {
              bucket: args.toBucket,
              ...(args.toPrefix === undefined ? {} : { prefix: args.toPrefix }),
            },
          },
        },
        {},
        'restore options (--to-instance, --to-database, --to-bucket, --to-prefix)',
      );
    }
    const result = await runRestore(ctx, request);
    print(
      options,
      result,
      [
        `restore ${result.restoreId} of ${result.backupId}: Succeeded`,
        `  database         ${result.database.instanceId}/${result.database.databaseName}${result.database.endpoint === undefined ? '' : ` (new instance at ${result.database.endpoint.host}:${result.database.endpoint.port})`}`,
        `  document library ${result.documentLibrary.bucket}/${result.documentLibrary.prefix}: ${result.documentLibrary.objectCount} objects, ${humanBytes(result.documentLibrary.totalSize)}, every SHA-256 checked`,
        `  took ${humanDuration(result.durationMs / 1000)}`,
      ].join('\n'),
    );
    return exitCodes.ok;
  });
}

export function verifyCommand(
  options: GlobalOptions,
  backupId: string,
  deep: boolean,
  signal: AbortSignal,
): Promise<number> {
  return withSession(options, signal, async ({ ctx }) => {
    const report = await verifyBackup(ctx, backupId, { deep });
    const lines = report.problems.map((p) => `  BAD ${p.object}: ${p.problem}`);
    print(
      options,
      report,
      [
        `verify${deep ? ' --deep' : ''} ${backupId}: ${report.ok ? 'OK' : `${report.problems.length} problem(s)`} — ${report.objectsChecked} documents, ${humanBytes(report.bytesChecked)} checked`,
        ...lines,
      ].join('\n'),
    );
    return report.ok ? exitCodes.ok : exitCodes.integrity;
  });
}

const states = ['Pending', 'InProgress', 'Succeeded', 'Failed', 'ManifestMissing', 'Deleted'];

export function listCommand(
  options: GlobalOptions,
  filter: { project?: string; environment?: string; state?: string; limit: string },
): Promise<number> {
  if (filter.state !== undefined && !states.includes(filter.state)) {
    throw new ValidationError(`--state: must be one of ${states.join(', ')} (got "${filter.state}")`);
  }
  const limit = Number(filter.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10000)
    throw new ValidationError(`--limit: must be a whole number from 1 to 10000 (got "${filter.limit}")`);
  return withSession(options, undefined, async ({ ctx }) => {
    const rows = await ctx.catalog.listBackups({
      projectId: filter.project,
      environment: filter.environment,
      state: filter.state as BackupState | undefined,
      limit,
    });
    const table = rows.map((r) =>
      [
        r.backupId.padEnd(44),
        r.state.padEnd(15),
        (r.startTime?.toISOString().replace('.000', '') ?? '-').padEnd(21),
        String(r.dlObjectCount ?? '-').padStart(9),
        humanBytes((r.dlTotalSizeBytes ?? 0) + (r.dbSnapshotSizeBytes ?? 0)).padStart(10),
        r.failureReason === null ? '' : `  ${r.failureReason.split('\n')[0] ?? ''}`,
      ].join(' '),
    );
    const header = `${'BACKUP'.padEnd(44)} ${'STATE'.padEnd(15)} ${'STARTED'.padEnd(21)} ${'OBJECTS'.padStart(9)} ${'SIZE'.padStart(10)}`;
    print(options, rows, rows.length === 0 ? 'no backups recorded' : [header, ...table].join('\n'));
    return exitCodes.ok;
  });
}

export function describeCommand(options: GlobalOptions, backupId: string): Promise<number> {
  return withSession(options, undefined, async ({ ctx }) => {
    const record = await ctx.catalog.getBackup(backupId);
    const located = await locateBackup(ctx, backupId).catch((err: unknown) => {
      if (record === undefined) throw err;
      return undefined;
    });
    const text = [
      `backup ${backupId}`,
      `  catalog: ${record ? `${record.state}${record.failureReason === null ? '' : ` (${record.failureReason})`}` : 'not recorded (run `catalog rebuild`)'}`,
      located
        ? `  manifest: ${located.bucket}/${located.manifestKey} (${located.header.checksum})`
        : '  manifest: missing — not restorable',
      located
        ? `  database: ${located.header.database.type} of ${located.header.database.instanceId}, ${humanBytes(located.header.database.size)}`
        : '',
      located
        ? `  documents: ${located.header.documentLibrary.objectCount} objects, ${humanBytes(located.header.documentLibrary.totalSize)} under ${located.header.documentLibrary.prefix}; excluded ${located.header.documentLibrary.excludedCount} (${located.header.documentLibrary.excludedPatterns.join(', ') || 'no patterns'})`
        : '',
    ].filter((l) => l !== '');
    print(options, { record, manifest: located?.header }, text.join('\n'));
    return exitCodes.ok;
  });
}

export function catalogRebuildCommand(options: GlobalOptions, project: string | undefined): Promise<number> {
  return withSession(options, undefined, async ({ ctx }) => {
    const report = await rebuildCatalog(ctx, project);
    print(
      options,
      report,
      [
        `catalog rebuild: ${report.manifests} manifests in ${report.scannedBuckets.length} buckets — ${report.inserted} added, ${report.updated} updated, ${report.unchanged} unchanged`,
        ...report.missing.map(
          (id) => `  ManifestMissing ${id}: recorded as Succeeded but its manifest is gone`,
        ),
        ...report.unreadable.map((u) => `  UNREADABLE ${u.path}: ${u.problem}`),
      ].join('\n'),
    );
    return report.unreadable.length === 0 ? exitCodes.ok : exitCodes.integrity;
  });
}
