import { describe, expect, it } from 'vitest';
import { RetryableError } from '../../errors/index.ts';
import { waitUntilReady, type PollState } from './wait.ts';

/** A resource whose polls return `states` in turn (an Error is thrown instead). */
function resource(states: (PollState | Error)[]): { poll: () => Promise<PollState>; polls: () => number } {
  let i = 0;
  return {
    poll: () => {
      const next = states[Math.min(i++, states.length - 1)];
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next as PollState);
    },
    polls: () => i,
  };
}

const fast = { initialDelayMs: 1, maxDelayMs: 2 };
const failed = { failed: 'delete it and run the request again' };

describe('waitUntilReady', () => {
  it('polls until ready, reporting the percentage and status of every poll', async () => {
    const r = resource([
      { status: 'creating', percent: 10 },
      { status: 'creating', percent: 60 },
      { status: 'available', percent: 100 },
    ]);
    const seen: string[] = [];
    const value = await waitUntilReady(
      { what: 'snapshot "s"', poll: r.poll, state: (s) => s, ready: 'available', failed, ...fast },
      { onProgress: (p, status) => seen.push(`${status} ${p}`) },
    );
    expect(value.status).toBe('available');
    expect(seen).toEqual(['creating 10', 'creating 60', 'available 100']);
  });

  it('fails on a terminal state, naming the resource, the state and what to do', async () => {
    const r = resource([{ status: 'creating' }, { status: 'failed' }, { status: 'available' }]);
    await expect(
      waitUntilReady({
        what: 'RDS snapshot "s1"',
        poll: r.poll,
        state: (s) => s,
        ready: 'available',
        failed,
        ...fast,
      }),
    ).rejects.toThrow('RDS snapshot "s1" is in state "failed"; delete it and run the request again');
    expect(r.polls()).toBe(2);
  });

  it('rides out throttled or dropped polls, but not permanent errors', async () => {
    const r = resource([new RetryableError('Throttling'), { status: 'available' }]);
    const spec = { what: 'x', state: (s: PollState) => s, ready: 'available', failed, ...fast };
    await expect(waitUntilReady({ ...spec, poll: r.poll })).resolves.toEqual({ status: 'available' });
    const denied = resource([new Error('AccessDenied'), { status: 'available' }]);
    await expect(waitUntilReady({ ...spec, poll: denied.poll })).rejects.toThrow('AccessDenied');
  });

  it('gives up after the timeout, saying the resource may still complete', async () => {
    const r = resource([{ status: 'creating', percent: 5 }]);
    await expect(
      waitUntilReady(
        {
          what: 'RDS instance "i"',
          poll: r.poll,
          state: (s) => s,
          ready: 'available',
          failed,
          initialDelayMs: 40,
        },
        { timeoutMs: 60 },
      ),
    ).rejects.toThrow(/RDS instance "i" is still "creating" after 0 min; it may still complete/);
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    const r = resource([{ status: 'creating' }]);
    const waiting = waitUntilReady(
      { what: 'x', poll: r.poll, state: (s) => s, ready: 'available', failed, initialDelayMs: 10_000 },
      { signal: controller.signal },
    );
    controller.abort(new Error('interrupted'));
    await expect(waiting).rejects.toThrow('interrupted');
  });
});
