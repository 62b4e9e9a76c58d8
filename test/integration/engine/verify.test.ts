// verify finds every damaged or missing object and names it (and never cries wolf on a clean
// backup); `catalog rebuild` re-creates the history from the manifests alone.
import { describe, expect, it } from 'vitest';
import { openCatalog } from '../../../src/catalog/catalog.ts';
import { runBackup, type BackupResult } from '../../../src/engine/backup/backup.ts';
import { rebuildCatalog } from '../../../src/engine/rebuild.ts';
import { verifyBackup } from '../../../src/engine/verify/verify.ts';
import { backupRequest, useApp } from './harness.ts';

const app = useApp({ objects: 16 });

describe('verify', () => {
  let backup: BackupResult;
  let second: BackupResult;

  it('names each damaged object: changed bytes of the same size (deep), a missing object, a truncated dump', async () => {
    backup = await runBackup(app.ctx, backupRequest(app, {}, 'retail-prd-backup-20250102-010000'));
    second = await runBackup(app.ctx, backupRequest(app, {}, 'retail-prd-backup-20250102-020000'));
    const entries = backup.header.documentLibrary;
    const stored = (key: string): string => `${entries.prefix}/${key}`;
    const keys = [...app.objects.keys()].filter(
      (k) => !k.includes('thumbnails') && (app.objects.get(k)?.length ?? 0) > 0,
    );
    const [flipped = '', removed = ''] = keys;
    const original = app.objects.get(flipped) ?? Buffer.alloc(0);
    const damaged = Buffer.from(original);
    damaged[0] = (damaged[0] ?? 0) ^ 0xff;
    await app.store.put(app.backupBucket, stored(flipped), damaged, { size: damaged.length });
    await app.store.delete(app.backupBucket, stored(removed));
    const dump = backup.header.database.artifact?.key ?? '';
    await app.store.put(app.backupBucket, dump, Buffer.from('truncated'), { size: 9 });

    const shallow = await verifyBackup(app.ctx, backup.header.backupId);
    expect(shallow.ok).toBe(false);
    const shallowText = shallow.problems.map((p) => `${p.object}: ${p.problem}`).join('\n');
    expect(shallowText).toContain(`document "${removed}": missing`);
    expect(shallowText).toContain(`${dump}: size 9 differs`);

    const deep = await verifyBackup(app.ctx, backup.header.backupId, { deep: true });
    const deepText = deep.problems.map((p) => `${p.object}: ${p.problem}`).join('\n');
    expect(deepText).toContain(`${app.backupBucket}/${stored(flipped)}: document "${flipped}": SHA-256`);
    expect(deepText).toContain(`document "${removed}": missing`);
    // the truncated dump fails both its size and its SHA-256
    expect(deep.problems).toHaveLength(4);

    // the other backup shares nothing with the damaged one: no false alarm
    expect((await verifyBackup(app.ctx, second.header.backupId, { deep: true })).problems).toEqual([]);
  });

  it('refuses a manifest that was altered', async () => {
    const key = `retail/prd/20250102-020000/manifest.json`;
    const text = (await app.store.get(app.backupBucket, key)).toArray();
    const body = Buffer.concat((await text) as Buffer[])
      .toString()
      .replace(/"objectCount": \d+/, '"objectCount": 1');
    await app.store.put(app.backupBucket, key, Buffer.from(body));
    await expect(verifyBackup(app.ctx, second.header.backupId)).rejects.toThrow(
      /checksum mismatch.*altered or damaged/,
    );
  });

  it('rebuilds the history into an empty catalog from the manifests, and marks a lost manifest', async () => {
    const fresh = await openCatalog('pglite://memory');
    try {
      const ctx = { ...app.ctx, catalog: fresh };
      const report = await rebuildCatalog(ctx);
      // the altered manifest of the second backup is reported, not trusted
      expect(report.inserted).toBe(1);
      expect(report.unreadable.map((u) => u.path).join()).toContain('20250102-020000/manifest.json');
      const row = await fresh.getBackup(backup.header.backupId);
      expect(row).toMatchObject({
        state: 'Succeeded',
        projectId: 'retail',
        dlObjectCount: backup.header.documentLibrary.objectCount,
      });
      expect(row?.manifestChecksum).toBe(backup.header.checksum.replace('sha256:', ''));

      await app.store.delete(app.backupBucket, 'retail/prd/20250102-010000/manifest.json');
      const again = await rebuildCatalog(ctx);
      expect(again.missing).toEqual([backup.header.backupId]);
      expect((await fresh.getBackup(backup.header.backupId))?.state).toBe('ManifestMissing');
    } finally {
      await fresh.close();
    }
  });
});
