// The engine's promise, on real PostgreSQL and MinIO: back up → verify → restore into a new
// database and a new bucket → schema and data identical, every restored object's SHA-256
// identical, the excluded renditions absent; a retried request adopts its finished work.
import { afterAll, describe, expect, it } from 'vitest';
import { runBackup, type BackupResult } from '../../../src/engine/backup/backup.ts';
import { runRestore } from '../../../src/engine/restore/restore.ts';
import { verifyBackup } from '../../../src/engine/verify/verify.ts';
import {
  backupRequest,
  dropDatabase,
  dumpText,
  expectedHashes,
  generatedKeys,
  restoreRequest,
  storedHashes,
  useApp,
} from './harness.ts';

// a 12 MiB object above a 5 MiB threshold takes the multipart server-side copy (no store-computed
// SHA-256 there: the engine hashes it)
const app = useApp({
  objects: 40,
  bigObject: 12 * 1024 * 1024,
  engine: { multipartCopyThreshold: 5 * 1024 * 1024 },
});
const cloneDb = `clone_${Date.now()}`;
afterAll(() => dropDatabase(cloneDb));

describe('backup and restore round trip (local provider: pg_dump + MinIO)', () => {
  let backup: BackupResult;

  it('backs up the database first, then the documents, then the manifest', async () => {
    const progress: string[] = [];
    backup = await runBackup(
      { ...app.ctx, onProgress: (p) => progress.push(p.phase ?? '') },
      backupRequest(app, {}, 'nightly'),
    );
    const { header } = backup;
    expect(backup.adopted).toBe(false);
    expect(header.backupId).toMatch(/^retail-prd-backup-\d{8}-\d{6}$/);
    const originals = [...app.objects.keys()].filter((k) => !generatedKeys(k));
    expect(header.documentLibrary.objectCount).toBe(originals.length);
    expect(header.documentLibrary.excludedCount).toBe(app.objects.size - originals.length);
    expect(header.documentLibrary.totalSize).toBe(
      originals.reduce((n, k) => n + (app.objects.get(k)?.length ?? 0), 0),
    );
    expect(header.database.type).toBe('pg-dump');
    expect(header.database.engineVersion).toMatch(/^15\./);
    expect(new Date(header.database.completedAt).getTime()).toBeLessThanOrEqual(
      new Date(header.completedAt).getTime(),
    );
    expect(progress.indexOf('database')).toBeLessThan(progress.indexOf('documentLibrary'));
    const big = await app.store.head(
      app.backupBucket,
      `${header.documentLibrary.prefix}/document_library/1/big/video.mp4`,
    );
    expect(big?.etag).toMatch(/-\d+$/); // assembled from parts: the multipart copy path

    const row = await app.catalog.getBackup(header.backupId);
    expect(row).toMatchObject({
      state: 'Succeeded',
      dlObjectCount: originals.length,
      dbType: 'dump',
      provider: 'local',
    });
    expect(row?.manifestChecksum).toBe(header.checksum.replace('sha256:', ''));
  });

  it('verifies clean, shallow and deep, with no false alarm', async () => {
    for (const deep of [false, true]) {
      const report = await verifyBackup(app.ctx, backup.header.backupId, { deep });
      expect(report.problems).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.objectsChecked).toBe(backup.header.documentLibrary.objectCount);
    }
  });

  it('adopts a finished backup when the same request is run again', async () => {
    const again = await runBackup(app.ctx, backupRequest(app, {}, backup.header.backupId));
    expect(again.adopted).toBe(true);
    expect(again.header.checksum).toBe(backup.header.checksum);
  });

  it('restores into a new database and bucket: pg_dump of both identical, every SHA-256 identical', async () => {
    const result = await runRestore(
      app.ctx,
      restoreRequest(backup.header.backupId, { databaseName: cloneDb, bucket: app.cloneBucket }),
    );
    expect(result.documentLibrary.objectCount).toBe(backup.header.documentLibrary.objectCount);
    expect(await dumpText(cloneDb)).toBe(await dumpText(app.sourceDb));

    const expected = expectedHashes(app);
    expect(await storedHashes(app.store, app.cloneBucket)).toEqual(expected);
    const row = await app.catalog.getRestore(result.restoreId);
    expect(row).toMatchObject({
      state: 'Succeeded',
      backupId: backup.header.backupId,
      restoredObjectCount: expected.size,
    });
  });

  it('refuses to restore over an existing database or into a non-empty bucket, and leaves them alone', async () => {
    await expect(
      runRestore(
        app.ctx,
        restoreRequest(backup.header.backupId, { databaseName: cloneDb, bucket: app.cloneBucket }),
      ),
    ).rejects.toThrow(/already holds objects|already exists/);
    await expect(
      runRestore(
        app.ctx,
        restoreRequest(backup.header.backupId, {
          databaseName: cloneDb,
          bucket: app.cloneBucket,
          prefix: 'fresh',
        }),
      ),
    ).rejects.toThrow(`database "${cloneDb}" already exists`);
    // the refused restore did not drop the earlier clone
    expect(await dumpText(cloneDb)).toBe(await dumpText(app.sourceDb));
  });
});
