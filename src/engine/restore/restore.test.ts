import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { bothOrNeither } from './restore.ts';

/** A step that runs until `ms` passed or its signal stops it; records how it ended. */
function step(ms: number, log: string[], name: string): (signal: AbortSignal) => Promise<string> {
  return async (signal) => {
    log.push(`${name} started`);
    try {
      await sleep(ms, undefined, { signal });
      log.push(`${name} done`);
      return name;
    } catch (err) {
      log.push(`${name} stopped`);
      throw err;
    }
  };
}

describe('bothOrNeither', () => {
  it('runs both steps at the same time and returns both results', async () => {
    const log: string[] = [];
    expect(await bothOrNeither(step(50, log, 'a'), step(50, log, 'b'))).toEqual(['a', 'b']);
    // the second started before the first ended
    expect(log.slice(0, 2)).toEqual(['a started', 'b started']);
    expect(log.slice(2).sort()).toEqual(['a done', 'b done']);
  });

  it('stops the other step when one fails, waits for it to settle, and throws the first error', async () => {
    const log: string[] = [];
    const failing = async (): Promise<never> => {
      await sleep(10);
      throw new Error('documents failed');
    };
    const settled: string[] = [];
    const outcome = bothOrNeither(step(10_000, log, 'database'), failing).catch((err: unknown) => {
      settled.push(...log);
      throw err;
    });
    await expect(outcome).rejects.toThrow('documents failed');
    // the database step had stopped before the failure was reported
    expect(settled).toEqual(['database started', 'database stopped']);
  });

  it('stops both when the caller aborts', async () => {
    const log: string[] = [];
    const parent = new AbortController();
    const outcome = bothOrNeither(step(10_000, log, 'a'), step(10_000, log, 'b'), parent.signal);
    parent.abort(new Error('interrupted'));
    await expect(outcome).rejects.toThrow();
    expect(log.filter((l) => l.endsWith('stopped')).sort()).toEqual(['a stopped', 'b stopped']);
  });
});
