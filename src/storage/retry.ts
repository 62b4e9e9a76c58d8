// Retries an ObjectStore's transient failures (RetryableError, reset connections) with capped
// exponential backoff and full jitter, so many workers hitting a throttled bucket spread out
// instead of retrying in lockstep. Wraps any provider; no provider retries on its own beyond
// what its SDK does per request.
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable, ThrottledError } from '../errors/index.ts';
import type {
  CopyOptions,
  ListPage,
  ObjectDigest,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from '../providers/types.ts';

export interface RetryEvent {
  /** The ObjectStore method, e.g. `put`. */
  operation: string;
  bucket: string;
  key?: string | undefined;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** How long the wrapper waits before the next attempt. */
  delayMs: number;
  error: unknown;
}

export interface RetryOptions {
  /** Total attempts, including the first (default 5). */
  attempts?: number;
  /** Backoff cap of the first retry (default 100 ms); doubles every attempt. */
  baseDelayMs?: number;
  /** Upper bound of any single wait (default 5000 ms). */
  maxDelayMs?: number;
  /**
   * Backoff cap of the first retry after the service throttled us (ThrottledError: S3 SlowDown,
   * 503, 429; default 1000 ms, doubling, capped by `maxThrottleDelayMs`): hammering a throttled
   * prefix only prolongs the throttle.
   */
  throttleBaseDelayMs?: number;
  /** Upper bound of a wait after throttling (default 20,000 ms). */
  maxThrottleDelayMs?: number;
  onRetry?: (event: RetryEvent) => void;
  /**
   * Runs around each call with its retries (e.g. a tracing span per provider call); the call's
   * operation, bucket and key are given.
   */
  around?: <T>(
    target: { operation: string; bucket: string; key?: string },
    call: () => Promise<T>,
  ) => Promise<T>;
  /** Source of randomness in [0, 1), for deterministic tests. */
  random?: () => number;
}

interface Target {
  operation: string;
  bucket: string;
  key?: string | undefined;
}

/**
 * The same store, retrying what retrying may cure. `get` retries only the call that opens the
 * stream: a failure while the caller reads it is the caller's to retry (it owns the bytes read
 * so far). `put` of a stream is not retried either: its first attempt consumed the stream, so a
 * second one would store a truncated object; put a Buffer, or retry the whole step, instead.
 * `digest` is offered when the store has it, and retried whole (it re-reads from the start).
 */
export function withRetry(store: ObjectStore, options: RetryOptions = {}): ObjectStore {
  const attempts = Math.max(1, options.attempts ?? 5);
  const baseDelayMs = options.baseDelayMs ?? 100;
  const maxDelayMs = options.maxDelayMs ?? 5000;
  const random = options.random ?? Math.random;
  const throttleBaseDelayMs = options.throttleBaseDelayMs ?? 1000;
  const maxThrottleDelayMs = options.maxThrottleDelayMs ?? 20_000;

  function capOf(error: unknown, attempt: number): number {
    return error instanceof ThrottledError
      ? Math.min(maxThrottleDelayMs, throttleBaseDelayMs * 2 ** (attempt - 1))
      : Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
  }

  function retrying<T>(target: Target, fn: () => Promise<T>, retryable = true): Promise<T> {
    const around = options.around;
    return around === undefined
      ? attemptAll(target, fn, retryable)
      : around(target, () => attemptAll(target, fn, retryable));
  }

  async function attemptAll<T>(target: Target, fn: () => Promise<T>, retryable: boolean): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (!retryable || attempt >= attempts || !isRetryable(error)) throw error;
        // full jitter: anywhere in [0, cap), which de-synchronises competing clients best
        const delayMs = Math.floor(random() * capOf(error, attempt));
        options.onRetry?.({ ...target, attempt, delayMs, error });
        await sleep(delayMs);
      }
    }
  }

  // offered only when the store has it, so callers still fall back to `get` for the others
  const storeDigest = store.digest?.bind(store);
  const digest =
    storeDigest === undefined
      ? {}
      : {
          digest: (bucket: string, key: string): Promise<ObjectDigest> =>
            retrying({ operation: 'digest', bucket, key }, () => storeDigest(bucket, key)),
        };

  return {
    name: store.name,
    bucketExists: (bucket: string): Promise<boolean> =>
      retrying({ operation: 'bucketExists', bucket }, () => store.bucketExists(bucket)),
    createBucket: (bucket: string): Promise<void> =>
      retrying({ operation: 'createBucket', bucket }, () => store.createBucket(bucket)),
    list: (
      bucket: string,
      prefix: string,
      listOptions?: { token?: string | undefined; limit?: number | undefined },
    ): Promise<ListPage> =>
      retrying({ operation: 'list', bucket, key: prefix }, () => store.list(bucket, prefix, listOptions)),
    head: (bucket: string, key: string): Promise<ObjectInfo | undefined> =>
      retrying({ operation: 'head', bucket, key }, () => store.head(bucket, key)),
    get: (bucket: string, key: string): Promise<Readable> =>
      retrying({ operation: 'get', bucket, key }, () => store.get(bucket, key)),
    put: (
      bucket: string,
      key: string,
      body: Readable | Buffer,
      putOptions?: PutOptions,
    ): Promise<ObjectInfo> =>
      retrying(
        { operation: 'put', bucket, key },
        () => store.put(bucket, key, body, putOptions),
        Buffer.isBuffer(body),
      ),
    // eslint-disable-next-line max-params -- the ObjectStore contract fixes this signature
    copy: (
      srcBucket: string,
      srcKey: string,
      dstBucket: string,
      dstKey: string,
      copyOptions: CopyOptions,
    ): Promise<ObjectInfo> =>
      retrying({ operation: 'copy', bucket: dstBucket, key: dstKey }, () =>
        store.copy(srcBucket, srcKey, dstBucket, dstKey, copyOptions),
      ),
    delete: (bucket: string, key: string): Promise<void> =>
      retrying({ operation: 'delete', bucket, key }, () => store.delete(bucket, key)),
    ...digest,
  } satisfies ObjectStore;
}
