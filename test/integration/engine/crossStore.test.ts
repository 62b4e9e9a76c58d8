// Backups across stores take the streamed path (GET from one, PUT to the other, SHA-256
// computed on the way): MinIO → a file:// directory, and back into a new MinIO bucket.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/config.ts';
import { runBackup } from '../../../src/engine/backup/backup.ts';
import { runRestore } from '../../../src/engine/restore/restore.ts';
import { StoreRegistry } from '../../../src/engine/stores.ts';
import { verifyBackup } from '../../../src/engine/verify/verify.ts';
import {
  backupRequest,
  dropDatabase,
  dumpText,
  expectedHashes,
  restoreRequest,
  storedHashes,
  useApp,
} from './harness.ts';

const app = useApp({ objects: 20 });
const disk = mkdtempSync(join(tmpdir(), 'lc2-cross-store-'));
afterAll(async () => {
  rmSync(disk, { recursive: true, force: true });
  await dropDatabase('cross_clone');
});

describe('backup and restore across stores', () => {
  it('streams MinIO → file:// → MinIO with every SHA-256 intact', async () => {
    const retail = app.config.projects.retail;
    if (!retail) throw new Error('harness config lacks project retail');
    const config = parseConfig(
      {
        ...app.config,
        stores: { ...app.config.stores, disk: { type: 'file', path: disk } },
        projects: {
          ...app.config.projects,
          retail: { ...retail, buckets: { ...retail.buckets, [app.backupBucket]: 'disk' } },
        },
      },
      'cross-store test',
    );
    const ctx = { ...app.ctx, config, stores: new StoreRegistry(config) };
    await ctx.stores.get('disk').createBucket(app.backupBucket);

    const backup = await runBackup(ctx, backupRequest(app, {}, 'retail-prd-backup-20250601-000000'));
    expect(backup.manifestPath).toMatch(/^file:\/\//);
    expect((await verifyBackup(ctx, backup.header.backupId, { deep: true })).problems).toEqual([]);

    await runRestore(
      ctx,
      restoreRequest(backup.header.backupId, { databaseName: 'cross_clone', bucket: app.cloneBucket }),
    );
    expect(await dumpText('cross_clone')).toBe(await dumpText(app.sourceDb));
    const expected = expectedHashes(app);
    expect(await storedHashes(app.store, app.cloneBucket)).toEqual(expected);
  });
});
