// Waiting for a provider resource (a snapshot, a restoring instance) to become available:
// polls with capped exponential backoff and jitter, reports progress, rides out transient
// errors, stops on abort, and fails with the resource's name and state on a terminal failure
// or a timeout.
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable } from '../../errors/index.ts';
import type { WaitOptions } from '../types.ts';

export interface PollState {
  status: string;
  /** 0–100 when the provider says; undefined otherwise. */
  percent?: number | undefined;
}

export interface WaitSpec<T> {
  /** For messages, e.g. `RDS snapshot "lc2-retail-prd-backup-…"`. */
  what: string;
  poll: () => Promise<T>;
  state: (value: T) => PollState;
  /** The status that ends the wait successfully, e.g. `available`. */
  ready: string;
  /** Statuses that will never become ready, each with what to do. */
  failed: Record<string, string>;
  /** First delay between polls (default 2 s); doubles up to `maxDelayMs` (default 30 s). */
  initialDelayMs?: number | undefined;
  maxDelayMs?: number | undefined;
  /** Default timeout when the caller gives none (default 4 h). */
  defaultTimeoutMs?: number | undefined;
}

/** Reports progress; true when ready; throws on a terminal failure state. */
function settled<T>(spec: WaitSpec<T>, state: PollState, options: WaitOptions): boolean {
  const ready = state.status === spec.ready;
  options.onProgress?.(ready ? 100 : (state.percent ?? 0), state.status);
  if (ready) return true;
  const hint = spec.failed[state.status];
  if (hint !== undefined) throw new Error(`${spec.what} is in state "${state.status}"; ${hint}`);
  return false;
}

export async function waitUntilReady<T>(spec: WaitSpec<T>, options: WaitOptions = {}): Promise<T> {
  const initial = spec.initialDelayMs ?? 2000;
  const max = spec.maxDelayMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? spec.defaultTimeoutMs ?? 4 * 3600_000;
  const deadline = Date.now() + timeoutMs;
  let delay = initial;
  let last: PollState = { status: 'unknown' };
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const value = await spec.poll();
      last = spec.state(value);
      if (settled(spec, last, options)) return value;
    } catch (err) {
      // a throttled or dropped poll is no news about the resource: poll again
      if (!isRetryable(err)) throw err;
    }
    if (Date.now() + delay > deadline) {
      throw new Error(
        `${spec.what} is still "${last.status}" after ${Math.round(timeoutMs / 60_000)} min; it may still complete: run the request again later to adopt it, or raise waitTimeoutMinutes`,
      );
    }
    // half fixed, half jitter: never a busy loop, never in lockstep with other waiters
    await sleep(delay / 2 + Math.random() * (delay / 2), undefined, { signal: options.signal }).catch(
      (err: unknown) => {
        options.signal?.throwIfAborted(); // the caller's reason, not a generic AbortError
        throw err;
      },
    );
    delay = Math.min(max, delay * 2);
  }
}
