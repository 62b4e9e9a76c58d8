import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { forEachLimit } from './copy.ts';

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
