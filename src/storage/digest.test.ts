import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../errors/index.ts';
import { FileObjectStore } from '../providers/local/fileObjectStore.ts';
import { MemoryObjectStore } from '../providers/memory/objectStore.ts';
import { digestObject } from './digest.ts';
import { withRetry } from './retry.ts';

const body = Buffer.from('stored bytes');
const expected = { size: body.length, sha256: createHash('sha256').update(body).digest('hex') };

describe('digestObject', () => {
  it('hashes the stream of a store without digest', async () => {
    const store = new MemoryObjectStore();
    await store.createBucket('b');
    await store.put('b', 'k', body);
    expect(await digestObject(store, 'b', 'k')).toEqual(expected);
    await expect(digestObject(store, 'b', 'missing')).rejects.toThrow(NotFoundError);
  });

  it("uses the store's own digest, through withRetry too, and not get", async () => {
    const root = await mkdtemp(join(tmpdir(), 'lc2-digest-'));
    try {
      const files = new FileObjectStore(root, { durable: false });
      await files.createBucket('b');
      await files.put('b', 'k', body);
      const store = withRetry(files);
      store.get = () => Promise.reject(new Error('get must not be called'));
      expect(await digestObject(store, 'b', 'k')).toEqual(expected);
      await expect(digestObject(store, 'b', 'missing')).rejects.toThrow(NotFoundError);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
