import { describe, expect, it } from 'vitest';
import { CallScheduler, type Priority } from './scheduler.ts';

/** A call that resolves when told to, recording when it started. */
function gate(started: string[], name: string): { call: () => Promise<string>; open: () => void } {
  let open = (): void => undefined;
  const done = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    call: async () => {
      started.push(name);
      await done;
      return name;
    },
    open: () => {
      open();
    },
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Calls that each record their name when they start and end on the next turn of the loop. */
function recorder(calls: CallScheduler): {
  order: string[];
  run: (name: string, priority: Priority) => Promise<void>;
} {
  const order: string[] = [];
  const run = (name: string, priority: Priority): Promise<void> =>
    calls.run(priority, async () => {
      order.push(name);
      await tick();
    });
  return { order, run };
}

describe('CallScheduler', () => {
  it('keeps at most `limit` calls in flight and lets waiting high-priority calls go first', async () => {
    const calls = new CallScheduler(2);
    const started: string[] = [];
    const gates = new Map<string, ReturnType<typeof gate>>();
    const submit = (name: string, priority: Priority): Promise<string> => {
      const g = gate(started, name);
      gates.set(name, g);
      return calls.run(priority, g.call);
    };
    const results = [
      submit('a', 'normal'),
      submit('b', 'normal'),
      submit('low', 'low'),
      submit('normal', 'normal'),
      submit('high', 'high'),
    ];
    await tick();
    expect(started).toEqual(['a', 'b']);
    expect(calls.load).toEqual({ inFlight: 2, waiting: 3 });
    gates.get('a')?.open();
    await tick();
    expect(started).toEqual(['a', 'b', 'high']);
    gates.get('b')?.open();
    await tick();
    gates.get('high')?.open();
    await tick();
    expect(started).toEqual(['a', 'b', 'high', 'normal', 'low']);
    gates.get('normal')?.open();
    gates.get('low')?.open();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'low', 'normal', 'high']);
    expect(calls.load).toEqual({ inFlight: 0, waiting: 0 });
  });

  it('lets a waiting lower-priority call through after eight high ones in a row', async () => {
    const { order, run } = recorder(new CallScheduler(1));
    const all = [run('first', 'high'), run('low', 'low')];
    for (let i = 0; i < 12; i++) all.push(run(`h${i}`, 'high'));
    await Promise.all(all);
    expect(order.indexOf('low')).toBe(9);
  });

  it('lets an urgent call pass the high ones that wait, and counts it toward the eight in a row', async () => {
    const { order, run } = recorder(new CallScheduler(1));
    const all = [run('first', 'high'), run('h0', 'high'), run('h1', 'high'), run('low', 'low')];
    all.push(run('urgent', 'urgent'));
    for (let i = 2; i < 10; i++) all.push(run(`h${i}`, 'high'));
    await Promise.all(all);
    expect(order.slice(0, 3)).toEqual(['first', 'urgent', 'h0']);
    expect(order.indexOf('low')).toBe(9);
  });

  it('frees the place of a call that fails', async () => {
    const calls = new CallScheduler(1);
    await expect(calls.run('normal', () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    expect(await calls.run('low', () => Promise.resolve(7))).toBe(7);
    expect(calls.load).toEqual({ inFlight: 0, waiting: 0 });
  });

  it('refuses a limit below one', () => {
    expect(() => new CallScheduler(0)).toThrow(/not a whole number ≥ 1/);
  });
});
