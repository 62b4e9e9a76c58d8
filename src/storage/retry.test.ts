import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { NotFoundError, RetryableError, ThrottledError } from '../errors/index.ts';
import { MemoryObjectStore } from '../providers/memory/objectStore.ts';
import type { ObjectStore } from '../providers/types.ts';
import { withRetry, type RetryEvent } from './retry.ts';

/** A store whose methods fail `failures` times with `error` before doing the real thing. */
function flaky(inner: ObjectStore, failures: number, error: () => Error): ObjectStore & { calls: string[] } {
  let left = failures;
  const calls: string[] = [];
  const gate = <T>(op: string, fn: () => Promise<T>): Promise<T> => {
    calls.push(op);
    if (left > 0) {
      left--;
      return Promise.reject(error());
    }
    return fn();
  };
  return {
    calls,
    name: inner.name,
    bucketExists: (b) => gate('bucketExists', () => inner.bucketExists(b)),
    createBucket: (b) => gate('createBucket', () => inner.createBucket(b)),
    list: (b, p, o) => gate('list', () => inner.list(b, p, o)),
    head: (b, k) => gate('head', () => inner.head(b, k)),
    get: (b, k) => gate('get', () => inner.get(b, k)),
    put: (b, k, body, o) => gate('put', () => inner.put(b, k, body, o)),
    // eslint-disable-next-line max-params -- the ObjectStore signature
    copy: (sb, sk, db, dk, o) => gate('copy', () => inner.copy(sb, sk, db, dk, o)),
    delete: (b, k) => gate('delete', () => inner.delete(b, k)),
  };
}

async function memory(): Promise<MemoryObjectStore> {
  const store = new MemoryObjectStore();
  await store.createBucket('b');
  await store.put('b', 'k', Buffer.from('value'));
  return store;
}

const fast = { baseDelayMs: 1, maxDelayMs: 2 };
const transient = (): Error => new RetryableError('SlowDown');

describe('withRetry', () => {
  it('retries a retryable failure until it succeeds, reporting each retry', async () => {
    const inner = flaky(await memory(), 3, transient);
    const events: RetryEvent[] = [];
    const store = withRetry(inner, { ...fast, onRetry: (e) => events.push(e) });
    expect((await store.head('b', 'k'))?.size).toBe(5);
    expect(inner.calls).toEqual(['head', 'head', 'head', 'head']);
    expect(events.map((e) => [e.operation, e.bucket, e.key, e.attempt])).toEqual([
      ['head', 'b', 'k', 1],
      ['head', 'b', 'k', 2],
      ['head', 'b', 'k', 3],
    ]);
    expect(events.every((e) => e.error instanceof RetryableError)).toBe(true);
  });

  it('retries network errors by their code (ECONNRESET)', async () => {
    const reset = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const inner = flaky(await memory(), 2, reset);
    await withRetry(inner, fast).list('b', '');
    expect(inner.calls).toEqual(['list', 'list', 'list']);
  });

  it('gives up after `attempts` and throws the last error', async () => {
    const inner = flaky(await memory(), 10, transient);
    await expect(withRetry(inner, { ...fast, attempts: 3 }).bucketExists('b')).rejects.toThrow('SlowDown');
    expect(inner.calls).toHaveLength(3);
  });

  it('does not retry permanent errors', async () => {
    const inner = flaky(await memory(), 1, () => new NotFoundError('gone'));
    await expect(withRetry(inner, fast).get('b', 'k')).rejects.toBeInstanceOf(NotFoundError);
    expect(inner.calls).toEqual(['get']);
  });

  it('retries opening a stream; the stream it returns is the real one', async () => {
    const inner = flaky(await memory(), 1, transient);
    const stream = await withRetry(inner, fast).get('b', 'k');
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe('value');
    expect(inner.calls).toEqual(['get', 'get']);
  });

  it('retries a put of a buffer but never a put of a stream it may have consumed', async () => {
    const buffered = flaky(await memory(), 1, transient);
    await withRetry(buffered, fast).put('b', 'new', Buffer.from('x'));
    expect(buffered.calls).toEqual(['put', 'put']);

    const streamed = flaky(await memory(), 1, transient);
    await expect(
      withRetry(streamed, fast).put('b', 'new', Readable.from([Buffer.from('x')])),
    ).rejects.toThrow('SlowDown');
    expect(streamed.calls).toEqual(['put']);
  });

  it('retries copy, delete and createBucket with their arguments intact', async () => {
    const inner = flaky(await memory(), 1, transient);
    const store = withRetry(inner, fast);
    const copied = await store.copy('b', 'k', 'b', 'k2', { size: 5 });
    expect(copied.key).toBe('k2');
    await store.delete('b', 'k2');
    await store.createBucket('c');
    expect(await store.bucketExists('c')).toBe(true);
    expect(store.name).toBe(inner.name);
  });

  it('offers digest only when the store has one, and retries it', async () => {
    const inner = await memory();
    expect('digest' in withRetry(inner)).toBe(false);
    let calls = 0;
    const digesting: ObjectStore = {
      ...flaky(inner, 0, transient),
      digest: () => (++calls < 3 ? Promise.reject(transient()) : Promise.resolve({ size: 5, sha256: 'x' })),
    };
    const events: RetryEvent[] = [];
    const store = withRetry(digesting, { ...fast, onRetry: (e) => events.push(e) });
    expect(await store.digest?.('b', 'k')).toEqual({ size: 5, sha256: 'x' });
    expect(calls).toBe(3);
    expect(events.map((e) => [e.operation, e.bucket, e.key])).toEqual([
      ['digest', 'b', 'k'],
      ['digest', 'b', 'k'],
    ]);
  });

  it('waits with capped exponential backoff and full jitter', async () => {
    const inner = flaky(await memory(), 6, transient);
    const delays: number[] = [];
    const store = withRetry(inner, {
      attempts: 7,
      baseDelayMs: 1,
      maxDelayMs: 8,
      random: () => 0.999,
      onRetry: (e) => delays.push(e.delayMs),
    });
    await store.head('b', 'k');
    // cap doubles from the base (1, 2, 4, 8) and stays at maxDelayMs; jitter picks within [0, cap)
    expect(delays).toEqual([0, 1, 3, 7, 7, 7]);

    const zero: number[] = [];
    const none = withRetry(flaky(await memory(), 2, transient), {
      ...fast,
      random: () => 0,
      onRetry: (e) => zero.push(e.delayMs),
    });
    await none.head('b', 'k');
    expect(zero).toEqual([0, 0]);
  });

  it('waits longer after throttling (SlowDown, 503) than after other transient errors, with jitter', async () => {
    const delays = async (error: () => Error): Promise<number[]> => {
      const events: RetryEvent[] = [];
      const store = withRetry(flaky(await memory(), 3, error), {
        baseDelayMs: 1,
        maxDelayMs: 8,
        throttleBaseDelayMs: 4,
        maxThrottleDelayMs: 12,
        random: () => 0.99,
        onRetry: (e) => events.push(e),
      });
      await store.head('b', 'k');
      return events.map((e) => e.delayMs);
    };
    // cap doubles per attempt: 1, 2, 4 for a reset; 4, 8, 12 (capped) after throttling
    expect(await delays(transient)).toEqual([0, 1, 3]);
    expect(await delays(() => new ThrottledError('SlowDown'))).toEqual([3, 7, 11]);
  });
});
