import { describe, expect, it } from 'vitest';
import {
  backupIdentity,
  backupLayout,
  backupTimestamp,
  databaseSnapshotId,
  documentKey,
  parseManifestKey,
  restoreId,
  sourceKeyOf,
} from './layout.ts';

describe('backup layout', () => {
  it('names a backup in the seeds form, from the request name when it has that form', () => {
    const now = new Date('2026-01-02T03:04:05Z');
    expect(backupIdentity('retail', 'prd', { name: 'retail-prd-backup-20251109-143000' }, now)).toEqual({
      backupId: 'retail-prd-backup-20251109-143000',
      timestamp: '20251109-143000',
    });
    expect(
      backupIdentity('retail', 'prd', { name: 'nightly', creationTimestamp: '2025-11-09T14:30:00Z' }, now)
        .backupId,
    ).toBe('retail-prd-backup-20251109-143000');
    expect(backupIdentity('retail', 'prd', {}, now).backupId).toBe('retail-prd-backup-20260102-030405');
    expect(backupTimestamp(new Date('2025-11-09T14:30:00.999Z'))).toBe('20251109-143000');
  });

  it('puts the manifest, entries, dump and documents under one root', () => {
    const l = backupLayout('retail', 'prd', '20251109-143000');
    expect(l).toEqual({
      root: 'retail/prd/20251109-143000',
      manifestKey: 'retail/prd/20251109-143000/manifest.json',
      entriesKey: 'retail/prd/20251109-143000/manifest.entries.jsonl.gz',
      databaseDumpKey: 'retail/prd/20251109-143000/db/database.pgdump.zst',
      documentsPrefix: 'retail/prd/20251109-143000/dl',
    });
    expect(backupLayout('retail', 'prd', '20251109-143000', 'custom/dl/').documentsPrefix).toBe('custom/dl');
    expect(parseManifestKey(l.manifestKey)).toEqual({
      projectId: 'retail',
      environment: 'prd',
      timestamp: '20251109-143000',
    });
    expect(parseManifestKey('retail/prd/20251109-143000/dl/manifest.json')).toBeUndefined();
  });

  it('keeps document keys byte for byte under the prefix and maps them back', () => {
    const key = 'document_library/2024/01/12345 é.pdf';
    expect(documentKey('a/dl', key)).toBe(`a/dl/${key}`);
    expect(sourceKeyOf('a/dl', documentKey('a/dl', key))).toBe(key);
    expect(documentKey('', key)).toBe(key);
    expect(() => sourceKeyOf('a/dl', 'b/x')).toThrow(/not under the documents prefix/);
  });

  it('derives a valid RDS snapshot id from the backup id, the same on every retry', () => {
    expect(databaseSnapshotId('retail-prd-backup-20251109-143000')).toBe(
      'lc2-retail-prd-backup-20251109-143000',
    );
    // DNS labels may hold "--" and end in digits; RDS forbids double hyphens
    const id = databaseSnapshotId('9a--b-prd-backup-20251109-143000');
    expect(id).toBe('lc2-9a-b-prd-backup-20251109-143000');
    expect(id).toMatch(/^[a-z](?!.*--)[a-z0-9-]{0,254}$/);
    expect(databaseSnapshotId(`${'x'.repeat(300)}-backup-20251109-143000`)).toHaveLength(255);
  });
});

describe('restoreId', () => {
  const at = new Date('2026-11-26T17:40:00.500Z');
  it('is the project, environment and start second; a named request adds a hash of its name', () => {
    expect(restoreId('retail-prd-backup-20261126-173959', at)).toBe('retail-prd-restore-20261126-174000');
    const a = restoreId('retail-prd-backup-20261126-173959', at, 'proj-retail-prd/restore-a');
    const b = restoreId('retail-prd-backup-20250103-020202', at, 'proj-retail-prd/restore-b');
    expect(a).toMatch(/^retail-prd-restore-20261126-174000-[0-9a-f]{6}$/);
    // two requests of one project in the same second: two ids; the same request: the same id
    expect(a).not.toBe(b);
    expect(restoreId('retail-prd-backup-20261126-173959', at, 'proj-retail-prd/restore-a')).toBe(a);
  });
});
