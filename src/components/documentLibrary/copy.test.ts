import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ProgressTracker } from '../../engine/progress.ts';
import { MemoryObjectStore } from '../../providers/memory/objectStore.ts';
import { backupDocuments, forEachLimit } from './copy.ts';

async function* items(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) {
    await Promise.resolve(); // a listing page arriving
    yield i;
  }
}

describe('forEachLimit', () => {
  it('keeps at most `limit` in flight', async () => {
    let active = 0;
    let max = 0;
    await forEachLimit(items(20), 4, async () => {
      active++;
      max = Math.max(max, active);
      await sleep(5);
      active--;
    });
    expect(max).toBe(4);
  });

  it('rejects with the first error only after the work in flight has finished', async () => {
    const finished: number[] = [];
    const failure = forEachLimit(items(10), 3, async (i) => {
      if (i === 0) throw new Error('first');
      await sleep(30);
      finished.push(i);
    });
    await expect(failure).rejects.toThrow('first');
    // items 1 and 2 were in flight when item 0 failed: both completed before the rejection
    expect(finished.sort()).toEqual([1, 2]);
  });
});

describe('backupDocuments', () => {
  /** A source of `n` objects whose listing calls are counted (and may fail once). */
  async function source(
    n: number,
    failCall?: number,
  ): Promise<{ store: MemoryObjectStore; calls: () => number }> {
    const store = new MemoryObjectStore();
    await store.createBucket('src');
    for (let i = 0; i < n; i++)
      await store.put('src', `k/${String(i).padStart(5, '0')}`, Buffer.from([i % 256]));
    let calls = 0;
    const list = store.list.bind(store);
    store.list = (...args) => {
      calls++;
      return calls === failCall ? Promise.reject(new Error('listing failed')) : list(...args);
    };
    return { store, calls: () => calls };
  }

  async function copyAll(
    from: MemoryObjectStore,
    options: { sharedPages?: number; slow?: boolean } = {},
  ): Promise<{ copied: string[]; progress: ProgressTracker; count: number }> {
    const to = new MemoryObjectStore();
    await to.createBucket('dst');
    const copied: string[] = [];
    const progress = new ProgressTracker('documentLibrary', undefined);
    const result = await backupDocuments({
      source: { store: from, bucket: 'src', prefix: 'k/' },
      destination: { store: to, bucket: 'dst', prefix: '' },
      excluded: (key) => key.endsWith('7'),
      concurrency: 4,
      progress,
      onEntry: async (entry) => {
        if (options.slow === true) await sleep(1);
        copied.push(entry.key);
      },
      sharedPages: options.sharedPages,
    });
    return { copied: copied.sort(), progress, count: result.objectCount + result.excludedCount };
  }

  const keys = (n: number): string[] =>
    Array.from({ length: n }, (_, i) => `k/${String(i).padStart(5, '0')}`).filter((k) => !k.endsWith('7'));

  it('lists the source once for the count and the copy', async () => {
    const { store, calls } = await source(2500);
    const { copied, progress, count } = await copyAll(store);
    expect(copied).toEqual(keys(2500));
    expect(count).toBe(2500);
    expect(progress.snapshot()).toMatchObject({ objectsTotal: 2250, objectsDone: 2250 });
    expect(calls()).toBe(3);
  });

  it('lists the rest itself when the count gets more than `sharedPages` ahead', async () => {
    const { store, calls } = await source(3500);
    const { copied, progress } = await copyAll(store, { sharedPages: 1, slow: true });
    expect(copied).toEqual(keys(3500));
    expect(progress.snapshot()).toMatchObject({ objectsTotal: 3150 });
    expect(calls()).toBeGreaterThan(4);
  });

  it("copies everything when the count's listing fails: the copy lists on itself", async () => {
    const { store } = await source(2500, 2);
    const { copied, progress } = await copyAll(store);
    expect(copied).toEqual(keys(2500));
    expect(progress.snapshot().objectsTotal).toBeUndefined();
  });
});
