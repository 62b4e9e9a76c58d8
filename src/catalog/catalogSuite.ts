// The behaviour every Catalog back end must show, run against PGlite (catalog.test.ts) and a
// real PostgreSQL server (catalog.int.test.ts). `open` must return a catalog on the same
// database each time, so a second call is a re-open. Every test uses its own project id, so
// the tests share one database without seeing each other's rows.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError, ValidationError } from '../errors/index.ts';
import {
  CatalogConflictError,
  CatalogStateError,
  type BackupStart,
  type Catalog,
  type ManifestSummary,
  type RestoreStart,
} from './catalog.ts';
import { latestSchemaVersion } from './migrations.ts';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const t0 = new Date('2025-11-09T14:30:00.000Z');
const later = (ms: number): Date => new Date(t0.getTime() + ms);

function project(): string {
  return `p${randomBytes(4).toString('hex')}`;
}

function backup(projectId: string, n: number, extra: Partial<BackupStart> = {}): BackupStart {
  return {
    backupId: `${projectId}-prd-backup-20251109-14300${n}`,
    projectId,
    environment: 'prd',
    provider: 'aws',
    dbType: 'snapshot',
    dbInstanceId: `${projectId}-prd-db`,
    dlSourceBucket: `liferay-${projectId}-prd-dl`,
    dlDestinationBucket: 'liferay-backups',
    dlDestinationPrefix: `${projectId}/prd/20251109-14300${n}/dl`,
    ...extra,
  };
}

function manifest(projectId: string, n: number, extra: Partial<ManifestSummary> = {}): ManifestSummary {
  const { backupId, environment, dlDestinationPrefix } = backup(projectId, n);
  return {
    backupId,
    projectId,
    environment,
    provider: 'aws',
    startTime: t0,
    completionTime: later(60_000),
    dbType: 'snapshot',
    dbSnapshotId: `rds:us-east-1:${backupId}`,
    dbSnapshotSizeBytes: 48_586_496_000,
    dlDestinationBucket: 'liferay-backups',
    dlDestinationPrefix,
    dlObjectCount: 12_453,
    dlTotalSizeBytes: 7_000_000_000,
    manifestPath: `s3://liferay-backups/${projectId}/prd/20251109-14300${n}/manifest.json`,
    manifestChecksum: 'a'.repeat(64),
    ...extra,
  };
}

function restore(projectId: string, backupId: string, n: number): RestoreStart {
  return {
    restoreId: `${projectId}-prd-restore-${n}`,
    backupId,
    projectId,
    environment: 'prd',
    crName: `restore-${n}`,
    crNamespace: projectId,
    targetDbInstanceId: `${projectId}-prd-db-clone`,
    targetDatabase: 'lportal_clone',
    targetBucket: `liferay-${projectId}-prd-dl-clone`,
    targetPrefix: '',
  };
}

function ids(rows: readonly { backupId: string }[]): string[] {
  return rows.map((r) => r.backupId);
}

export function describeCatalog(name: string, open: () => Promise<Catalog>): void {
  describe(`Catalog on ${name}`, { timeout: 60_000 }, () => {
    let catalog: Catalog;
    beforeAll(async () => {
      catalog = await open();
    }, 120_000);
    afterAll(async () => {
      await catalog.close();
    });

    it('applies the schema on first open and nothing on re-open, keeping the rows', async () => {
      expect(catalog.schema).toEqual({ from: 0, to: latestSchemaVersion, applied: [1, 2] });
      const p = project();
      await catalog.recordBackupStarted(backup(p, 1));
      const again = await open();
      try {
        expect(again.schema).toEqual({ from: latestSchemaVersion, to: latestSchemaVersion, applied: [] });
        expect(await again.getBackup(backup(p, 1).backupId)).toMatchObject({ state: 'InProgress' });
      } finally {
        await again.close();
      }
    });

    it('records a backup from start through progress to success and reads it back', async () => {
      const p = project();
      const start = backup(p, 1, { crName: 'nightly-1', crNamespace: p, startTime: t0 });
      const started = await catalog.recordBackupStarted(start);
      expect(started).toMatchObject({
        ...start,
        state: 'InProgress',
        completionTime: null,
        failureReason: null,
      });
      expect(started.id).toMatch(uuid);
      expect(started.createdAt).toBeInstanceOf(Date);

      const snapshotId = `rds:us-east-1:${start.backupId}`;
      // above 2^32: BIGINT must come back as the same number from both back ends
      await catalog.recordBackupProgress(start.backupId, {
        dbSnapshotId: snapshotId,
        dbSnapshotSizeBytes: 48_586_496_000,
      });
      const done = await catalog.recordBackupSucceeded(start.backupId, {
        completionTime: later(90_000),
        dlObjectCount: 12_453,
        dlTotalSizeBytes: 7_000_000_000,
        dlManifestPath: `s3://liferay-backups/${p}/manifest.json`,
        manifestChecksum: 'b'.repeat(64),
      });
      const got = await catalog.getBackup(start.backupId);
      expect(got).toEqual(done);
      expect(got).toMatchObject({
        state: 'Succeeded',
        startTime: t0,
        completionTime: later(90_000),
        durationMs: 90_000,
        dbSnapshotId: snapshotId,
        dbSnapshotSizeBytes: 48_586_496_000,
        dlObjectCount: 12_453,
        dlTotalSizeBytes: 7_000_000_000,
        manifestChecksum: 'b'.repeat(64),
        archivedAt: null,
      });
      expect(await catalog.getBackup(`${p}-no-such-backup`)).toBeUndefined();
    });

    it('takes the start and the duration from the row in the same write', async () => {
      const p = project();
      // Pending: no start yet; a failure then has no duration
      const pending = backup(p, 1, { state: 'Pending' });
      expect(await catalog.recordBackupStarted(pending)).toMatchObject({ state: 'Pending', startTime: null });
      const failed = await catalog.recordBackupFailed(pending.backupId, 'cancelled before it started');
      expect(failed).toMatchObject({ state: 'Failed', startTime: null, durationMs: null });
      // the first progress of a Pending backup starts it; its success is timed from that start
      const queued = backup(p, 2, { state: 'Pending' });
      await catalog.recordBackupStarted(queued);
      const running = await catalog.recordBackupProgress(queued.backupId, { dlObjectCount: 1 });
      expect(running.state).toBe('InProgress');
      expect(running.startTime).toBeInstanceOf(Date);
      const startTime = running.startTime as Date;
      const again = await catalog.recordBackupProgress(queued.backupId, { dlObjectCount: 2 });
      expect(again.startTime).toEqual(startTime);
      const done = await catalog.recordBackupSucceeded(queued.backupId, {
        completionTime: new Date(startTime.getTime() + 1_234),
      });
      expect(done).toMatchObject({ state: 'Succeeded', startTime, durationMs: 1_234, dlObjectCount: 2 });
      // a completion before the start (clocks apart) is a duration of 0, not a negative one
      const early = backup(p, 3, { startTime: t0 });
      await catalog.recordBackupStarted(early);
      const odd = await catalog.recordBackupSucceeded(early.backupId, { completionTime: later(-5_000) });
      expect(odd.durationMs).toBe(0);
    });

    it('lists newest first, filtered by project, environment and state, up to the limit', async () => {
      const p = project();
      await catalog.recordBackupStarted(backup(p, 1));
      await catalog.recordBackupStarted(backup(p, 2));
      await catalog.recordBackupStarted(backup(p, 3, { environment: 'uat' }));
      await catalog.recordBackupSucceeded(backup(p, 2).backupId);
      await catalog.recordBackupFailed(backup(p, 1).backupId, 'snapshot quota exceeded');
      const [b1, b2, b3] = [1, 2, 3].map((n) => backup(p, n).backupId);

      expect(ids(await catalog.listBackups({ projectId: p }))).toEqual([b3, b2, b1]);
      expect(ids(await catalog.listBackups({ projectId: p, environment: 'prd' }))).toEqual([b2, b1]);
      expect(ids(await catalog.listBackups({ projectId: p, state: 'Failed' }))).toEqual([b1]);
      expect(ids(await catalog.listBackups({ projectId: p, limit: 2 }))).toEqual([b3, b2]);
      expect(await catalog.listBackups({ projectId: project() })).toEqual([]);
      expect((await catalog.listBackups()).length).toBeGreaterThanOrEqual(3);
      await expect(catalog.listBackups({ limit: 0 })).rejects.toThrow(ValidationError);
      await expect(catalog.listBackups({ limit: 1.5 })).rejects.toThrow(ValidationError);
    });

    it('records a failure with its reason', async () => {
      const p = project();
      const { backupId } = backup(p, 1);
      await catalog.recordBackupStarted(backup(p, 1));
      const failed = await catalog.recordBackupFailed(backupId, 'RDS snapshot failed: InsufficientStorage');
      expect(failed).toMatchObject({
        state: 'Failed',
        failureReason: 'RDS snapshot failed: InsufficientStorage',
      });
      expect(failed.completionTime).toBeInstanceOf(Date);
      expect(failed.durationMs).toBeGreaterThanOrEqual(0);
      // a repeated failure report is not a change of state
      const again = await catalog.recordBackupFailed(backupId, 'gave up after 3 attempts');
      expect(again).toMatchObject({ state: 'Failed', failureReason: 'gave up after 3 attempts' });
      await expect(catalog.recordBackupFailed(backupId, ' ')).rejects.toThrow(ValidationError);
      const long = await catalog.recordBackupFailed(backupId, 'x'.repeat(10_000));
      expect(long.failureReason?.length).toBeLessThanOrEqual(4000);
    });

    it('finds its own row when a start is retried (upsert by backup id)', async () => {
      const p = project();
      const first = await catalog.recordBackupStarted(backup(p, 1, { startTime: t0 }));
      const retried = await catalog.recordBackupStarted(backup(p, 1, { startTime: later(5_000) }));
      expect(retried).toMatchObject({
        id: first.id,
        state: 'InProgress',
        startTime: t0,
        createdAt: first.createdAt,
      });

      // queued, then started
      const queued = await catalog.recordBackupStarted(backup(p, 2, { state: 'Pending' }));
      expect(queued).toMatchObject({ state: 'Pending', startTime: null });
      const running = await catalog.recordBackupStarted(backup(p, 2, { startTime: t0 }));
      expect(running).toMatchObject({ id: queued.id, state: 'InProgress', startTime: t0 });

      // Failed → a retry is a new attempt of the same request: InProgress, failure cleared,
      // facts already learnt (the snapshot to adopt) kept
      const { backupId } = backup(p, 1);
      await catalog.recordBackupProgress(backupId, { dbSnapshotId: 'snap-1' });
      await catalog.recordBackupFailed(backupId, 'connection reset');
      const retry = await catalog.recordBackupStarted(backup(p, 1, { startTime: later(60_000) }));
      expect(retry).toMatchObject({
        id: first.id,
        state: 'InProgress',
        startTime: later(60_000),
        completionTime: null,
        durationMs: null,
        failureReason: null,
        dbSnapshotId: 'snap-1',
      });

      // Succeeded → returned as it is: the work is done and the caller adopts it
      const done = await catalog.recordBackupSucceeded(backupId);
      expect(await catalog.recordBackupStarted(backup(p, 1))).toEqual(done);
    });

    it('makes one row when the same start is recorded concurrently', async () => {
      const p = project();
      const rows = await Promise.all([1, 2, 3, 4, 5].map(() => catalog.recordBackupStarted(backup(p, 1))));
      expect(new Set(rows.map((r) => r.id)).size).toBe(1);
      expect(await catalog.listBackups({ projectId: p })).toHaveLength(1);

      // different ids racing for one custom resource: one wins, the others are told why
      const cr = { crName: 'race', crNamespace: p };
      const results = await Promise.allSettled(
        [2, 3, 4, 5].map((n) => catalog.recordBackupStarted(backup(p, n, cr))),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(CatalogConflictError);
      }
    });

    it('never leaves a terminal state silently', async () => {
      const p = project();
      const [failedId, doneId] = [backup(p, 1).backupId, backup(p, 2).backupId];
      await catalog.recordBackupStarted(backup(p, 1));
      const failed = await catalog.recordBackupFailed(failedId, 'pg_dump exited with code 1');
      await catalog.recordBackupStarted(backup(p, 2));
      const done = await catalog.recordBackupSucceeded(doneId, { completionTime: later(1_000) });

      await expect(catalog.recordBackupSucceeded(failedId)).rejects.toThrow(CatalogStateError);
      await expect(catalog.recordBackupSucceeded(failedId)).rejects.toThrow(
        /cannot record success for backup .*: it is Failed \(pg_dump exited with code 1\); Failed is final/,
      );
      await expect(catalog.recordBackupProgress(failedId, { dlObjectCount: 1 })).rejects.toThrow(
        CatalogStateError,
      );
      await expect(catalog.markManifestMissing(failedId)).rejects.toThrow(CatalogStateError);
      await expect(catalog.recordBackupFailed(doneId, 'late error')).rejects.toThrow(CatalogStateError);
      await expect(catalog.recordBackupProgress(doneId, { dlObjectCount: 1 })).rejects.toThrow(
        CatalogStateError,
      );
      expect(await catalog.getBackup(failedId)).toEqual(failed);
      expect(await catalog.getBackup(doneId)).toEqual(done);

      // a repeated success report is allowed (the caller may not have seen the first answer)
      expect(await catalog.recordBackupSucceeded(doneId, { completionTime: later(1_000) })).toMatchObject({
        state: 'Succeeded',
        completionTime: later(1_000),
      });
      await expect(catalog.recordBackupSucceeded(`${p}-unknown`)).rejects.toThrow(NotFoundError);
      await expect(catalog.recordBackupFailed(`${p}-unknown`, 'x')).rejects.toThrow(NotFoundError);
    });

    it('refuses an id or a custom resource that belongs to another request', async () => {
      const p = project();
      await catalog.recordBackupStarted(backup(p, 1, { crName: 'nightly', crNamespace: p }));
      await expect(catalog.recordBackupStarted(backup(p, 1, { projectId: project() }))).rejects.toThrow(
        CatalogConflictError,
      );
      await expect(catalog.recordBackupStarted(backup(p, 1, { environment: 'uat' }))).rejects.toThrow(
        /already recorded with environment "prd", not "uat"/,
      );
      await expect(
        catalog.recordBackupStarted(backup(p, 2, { crName: 'nightly', crNamespace: p })),
      ).rejects.toThrow(/custom resource .*\/nightly is already recorded as backup/);
      expect(await catalog.getBackup(backup(p, 2).backupId)).toBeUndefined();
    });

    it('rejects bad input by field name before writing anything', async () => {
      const p = project();
      const { backupId } = backup(p, 1);
      const bad: Partial<BackupStart>[] = [
        { projectId: '' },
        { projectId: 'x'.repeat(101) },
        { dbType: 'tar' as 'dump' },
        { crName: 'only-the-name' },
        { startTime: new Date('not a date') },
      ];
      for (const extra of bad) {
        await expect(catalog.recordBackupStarted(backup(p, 1, extra))).rejects.toThrow(ValidationError);
      }
      await expect(catalog.recordBackupStarted(backup(p, 1, { projectId: 'x'.repeat(101) }))).rejects.toThrow(
        /projectId must be at most 100 characters/,
      );
      expect(await catalog.getBackup(backupId)).toBeUndefined();
      await catalog.recordBackupStarted(backup(p, 1));
      await expect(catalog.recordBackupProgress(backupId, { dlObjectCount: -1 })).rejects.toThrow(
        /dlObjectCount must be a whole number/,
      );
      await expect(catalog.recordBackupSucceeded(backupId, { dlTotalSizeBytes: 1.5 })).rejects.toThrow(
        ValidationError,
      );
      expect(await catalog.getBackup(backupId)).toMatchObject({ state: 'InProgress', dlObjectCount: null });
    });

    it('records restores with the same rules', async () => {
      const p = project();
      const { backupId } = backup(p, 1);
      const r1 = restore(p, backupId, 1);
      const started = await catalog.recordRestoreStarted({ ...r1, startTime: t0 });
      expect(started).toMatchObject({ ...r1, state: 'InProgress', startTime: t0 });
      expect(started.id).toMatch(uuid);
      await catalog.recordRestoreProgress(r1.restoreId, { restoredObjectCount: 10 });
      const done = await catalog.recordRestoreSucceeded(r1.restoreId, {
        completionTime: later(30_000),
        restoredObjectCount: 12_453,
        restoredTotalSizeBytes: 7_000_000_000,
      });
      expect(done).toMatchObject({
        state: 'Succeeded',
        durationMs: 30_000,
        restoredTotalSizeBytes: 7_000_000_000,
      });
      expect(await catalog.getRestore(r1.restoreId)).toEqual(done);
      await expect(catalog.recordRestoreFailed(r1.restoreId, 'too late')).rejects.toThrow(CatalogStateError);

      const r2 = restore(p, backupId, 2);
      await catalog.recordRestoreStarted(r2);
      const failed = await catalog.recordRestoreFailed(r2.restoreId, 'target bucket not empty');
      expect(failed).toMatchObject({ state: 'Failed', failureReason: 'target bucket not empty' });
      await expect(catalog.recordRestoreSucceeded(r2.restoreId)).rejects.toThrow(CatalogStateError);
      expect(await catalog.recordRestoreStarted(r2)).toMatchObject({
        id: failed.id,
        state: 'InProgress',
        failureReason: null,
      });

      const restoreIds = (rows: readonly { restoreId: string }[]): string[] => rows.map((r) => r.restoreId);
      expect(restoreIds(await catalog.listRestores({ projectId: p }))).toEqual([r2.restoreId, r1.restoreId]);
      expect(restoreIds(await catalog.listRestores({ backupId, state: 'Succeeded' }))).toEqual([
        r1.restoreId,
      ]);
      expect(await catalog.listRestores({ projectId: p, environment: 'uat' })).toEqual([]);
      expect(await catalog.getRestore(`${p}-unknown`)).toBeUndefined();
      await expect(catalog.recordRestoreStarted({ ...r1, backupId: `${p}-other` })).rejects.toThrow(
        CatalogConflictError,
      );
      await expect(catalog.recordRestoreSucceeded(`${p}-unknown`)).rejects.toThrow(/recordRestoreStarted/);
    });

    it('re-creates history from manifests: inserts, updates, and keeps a recorded failure', async () => {
      const p = project();
      const m1 = manifest(p, 1);
      const inserted = await catalog.upsertFromManifest(m1);
      expect(inserted.outcome).toBe('inserted');
      expect(inserted.backup).toMatchObject({
        state: 'Succeeded',
        startTime: t0,
        completionTime: later(60_000),
        durationMs: 60_000,
        dbSnapshotSizeBytes: 48_586_496_000,
        dlManifestPath: m1.manifestPath,
        manifestChecksum: m1.manifestChecksum,
        crName: null,
        // a rebuilt row sorts by when the backup ran
        createdAt: t0,
      });
      expect(await catalog.upsertFromManifest(m1)).toEqual({ outcome: 'unchanged', backup: inserted.backup });
      const changed = await catalog.upsertFromManifest({ ...m1, manifestChecksum: 'c'.repeat(64) });
      expect(changed).toMatchObject({
        outcome: 'updated',
        backup: { id: inserted.backup.id, manifestChecksum: 'c'.repeat(64) },
      });

      // InProgress (the process died after writing the manifest, before recording success)
      const cr = { crName: 'nightly-2', crNamespace: p };
      await catalog.recordBackupStarted(backup(p, 2, cr));
      const promoted = await catalog.upsertFromManifest(manifest(p, 2));
      expect(promoted).toMatchObject({ outcome: 'updated', backup: { state: 'Succeeded', ...cr } });

      // Failed (e.g. verification failed after the manifest was written): not overturned
      await catalog.recordBackupStarted(backup(p, 3));
      await catalog.recordBackupFailed(backup(p, 3).backupId, 'verify: 2 objects differ from the manifest');
      const kept = await catalog.upsertFromManifest(manifest(p, 3));
      expect(kept).toMatchObject({ outcome: 'keptFailed', backup: { state: 'Failed' } });

      await expect(catalog.upsertFromManifest({ ...m1, projectId: project() })).rejects.toThrow(
        CatalogConflictError,
      );
      await expect(catalog.upsertFromManifest({ ...m1, manifestChecksum: '' })).rejects.toThrow(
        ValidationError,
      );
      const older = manifest(p, 4, { startTime: new Date('2020-01-01T00:00:00Z') });
      await catalog.upsertFromManifest(older);
      expect(ids(await catalog.listBackups({ projectId: p })).at(-1)).toBe(older.backupId);
    });

    it('marks a backup deleted on request; a manifest found later does not bring it back', async () => {
      const p = project();
      const { backupId } = backup(p, 1);
      await catalog.recordBackupStarted(backup(p, 2));
      await expect(catalog.markDeleted(backup(p, 2).backupId)).rejects.toThrow(CatalogStateError);
      await catalog.upsertFromManifest(manifest(p, 1));
      expect(await catalog.markDeleted(backupId)).toMatchObject({ state: 'Deleted' });
      expect(await catalog.markDeleted(backupId)).toMatchObject({ state: 'Deleted' });
      expect(await catalog.upsertFromManifest(manifest(p, 1))).toMatchObject({
        outcome: 'keptFailed',
        backup: { state: 'Deleted' },
      });
      expect(ids(await catalog.listBackups({ projectId: p, state: 'Deleted' }))).toEqual([backupId]);
    });

    it('marks a backup whose manifest is gone, and brings it back when the manifest is found', async () => {
      const p = project();
      const { backupId } = backup(p, 1);
      await catalog.upsertFromManifest(manifest(p, 1));
      expect(await catalog.markManifestMissing(backupId)).toMatchObject({ state: 'ManifestMissing' });
      expect(await catalog.markManifestMissing(backupId)).toMatchObject({ state: 'ManifestMissing' });
      expect(ids(await catalog.listBackups({ projectId: p, state: 'ManifestMissing' }))).toEqual([backupId]);
      await expect(catalog.recordBackupSucceeded(backupId)).rejects.toThrow(CatalogStateError);
      expect(await catalog.recordBackupStarted(backup(p, 1))).toMatchObject({ state: 'ManifestMissing' });
      expect(await catalog.upsertFromManifest(manifest(p, 1))).toMatchObject({
        outcome: 'updated',
        backup: { state: 'Succeeded' },
      });
      await catalog.recordBackupStarted(backup(p, 2));
      await expect(catalog.markManifestMissing(backup(p, 2).backupId)).rejects.toThrow(CatalogStateError);
      await expect(catalog.markManifestMissing(`${p}-unknown`)).rejects.toThrow(NotFoundError);
    });
  });
}
