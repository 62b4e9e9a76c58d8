import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryObjectStore } from '../providers/memory/objectStore.ts';
import { EntriesWriter, readEntries } from './entries.ts';
import type { DocumentEntry } from './manifest.ts';

const entry = (i: number): DocumentEntry => ({
  key: `document_library/${i}/1.0`,
  size: i,
  etag: createHash('md5').update(String(i)).digest('hex'),
  lastModified: new Date(0).toISOString(),
  sha256: createHash('sha256').update(String(i)).digest('hex'),
  storedKey: `retail/prd/20250101-000000/dl/document_library/${i}/1.0`,
});

describe('manifest entries', () => {
  it('streams many concurrent writers into one gzip object and reads them back, checksum checked', async () => {
    const store = new MemoryObjectStore();
    await store.createBucket('b');
    const writer = new EntriesWriter(store, 'b', 'entries.jsonl.gz');
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on('warning', onWarning);
    // 64 writers at once, as a copy with high concurrency produces them
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < 20_000) await writer.write(entry(next++));
      }),
    );
    const summary = await writer.close();
    process.off('warning', onWarning);
    expect(summary.count).toBe(20_000);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);

    const seen = new Set<number>();
    for await (const e of readEntries(await store.get('b', 'entries.jsonl.gz'), summary.checksum, 'entries'))
      seen.add(e.size);
    expect(seen.size).toBe(20_000);
  });

  it('refuses entries whose stored bytes do not match the manifest checksum', async () => {
    const store = new MemoryObjectStore();
    await store.createBucket('b');
    const writer = new EntriesWriter(store, 'b', 'e.gz');
    await writer.write(entry(1));
    await writer.close();
    const read = async (): Promise<void> => {
      for await (const _entry of readEntries(
        await store.get('b', 'e.gz'),
        `sha256:${'0'.repeat(64)}`,
        'b/e.gz',
      )) {
        // drain
      }
    };
    await expect(read()).rejects.toThrow(/b\/e\.gz: checksum mismatch/);
  });
});
