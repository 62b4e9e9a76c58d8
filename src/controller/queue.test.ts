import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { WorkQueue } from './queue.ts';

describe('work queue', () => {
  it('never runs one key twice at once, and re-runs a key added while it ran', async () => {
    let active = 0;
    let maxActive = 0;
    const runs: string[] = [];
    const queue = new WorkQueue(async (key) => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.push(key);
      await sleep(20);
      active--;
      return undefined;
    });
    queue.add('ns/a');
    await sleep(5);
    queue.add('ns/a'); // while running: marked dirty
    queue.add('ns/a'); // collapsed into the same re-run
    await sleep(80);
    expect(runs).toEqual(['ns/a', 'ns/a']);
    expect(maxActive).toBe(1);
    await queue.stop();
  });

  it('bounds the keys in flight', async () => {
    let active = 0;
    let maxActive = 0;
    const queue = new WorkQueue(
      async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(10);
        active--;
        return undefined;
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 12; i++) queue.add(`ns/${i}`);
    await sleep(100);
    expect(maxActive).toBe(3);
    await queue.stop();
  });

  it('retries failures with growing delays and honours requeueAfter', async () => {
    const times: number[] = [];
    const errors: number[] = [];
    const queue = new WorkQueue(
      (key) => {
        times.push(Date.now());
        if (times.length < 4) return Promise.reject(new Error(`boom ${key}`));
        return Promise.resolve(times.length === 4 ? { requeueAfterMs: 30 } : undefined);
      },
      { baseDelayMs: 10, onError: (_key, _err, delay) => errors.push(delay) },
    );
    queue.add('ns/x');
    await sleep(250);
    expect(times).toHaveLength(5);
    expect(errors).toHaveLength(3);
    // backoff caps grow 10, 20, 40 ms (each delay is between half and all of its cap)
    expect(errors[0]).toBeLessThanOrEqual(10);
    expect(errors[2]).toBeGreaterThanOrEqual(20);
    expect((times[4] ?? 0) - (times[3] ?? 0)).toBeGreaterThanOrEqual(28);
    await queue.stop();
  });
});
