import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../errors/index.ts';
import { decodeManifest, encodeManifest, FORMAT_VERSION, type ManifestHeader } from './manifest.ts';

function sampleHeader(): Omit<ManifestHeader, 'checksum'> {
  return {
    formatVersion: FORMAT_VERSION,
    tool: { name: 'lc2-backup', version: '0.1.0' },
    backupId: 'retail-prd-backup-20251109-143000',
    projectId: 'retail',
    environment: 'prd',
    provider: 'local',
    timestamp: '2025-11-09T14:30:00.000Z',
    completedAt: '2025-11-09T14:45:00.000Z',
    database: {
      type: 'pg-dump',
      instanceId: 'retail-prd-db',
      engine: 'postgres',
      size: 10,
      checksum: `sha256:${'a'.repeat(64)}`,
      startedAt: '2025-11-09T14:30:00.000Z',
      completedAt: '2025-11-09T14:31:00.000Z',
    },
    documentLibrary: {
      sourceBucket: 'liferay-retail-prd-dl',
      sourceStore: 's3://127.0.0.1:9000',
      bucket: 'liferay-backups',
      store: 's3://127.0.0.1:9000',
      prefix: 'retail/prd/20251109-143000/dl',
      objectCount: 1,
      totalSize: 5,
      excludedPatterns: ['**/thumbnails/**'],
      excludedCount: 0,
      excludedSize: 0,
      entries: {
        key: 'retail/prd/20251109-143000/manifest.entries.jsonl.gz',
        count: 1,
        checksum: `sha256:${'b'.repeat(64)}`,
      },
    },
  };
}

describe('manifest header', () => {
  it('round-trips and checks its checksum over canonical bytes', () => {
    const { header, bytes } = encodeManifest(sampleHeader());
    expect(header.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(decodeManifest(bytes, 'm')).toEqual(header);
    // key order does not matter: the checksum is over key-sorted JSON
    const reordered = Buffer.from(JSON.stringify(Object.fromEntries(Object.entries(header).reverse())));
    expect(decodeManifest(reordered, 'm').checksum).toBe(header.checksum);
  });

  it('rejects an altered manifest as an integrity error', () => {
    const { bytes } = encodeManifest(sampleHeader());
    const altered = Buffer.from(bytes.toString().replace('"objectCount": 1', '"objectCount": 2'));
    expect(() => decodeManifest(altered, 'retail/prd/x/manifest.json')).toThrow(IntegrityError);
    expect(() => decodeManifest(altered, 'retail/prd/x/manifest.json')).toThrow(/checksum mismatch/);
    expect(() => decodeManifest(Buffer.from('{'), 'm')).toThrow(/not valid JSON/);
  });
});
