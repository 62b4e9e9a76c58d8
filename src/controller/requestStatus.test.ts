import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../observability/logger.ts';
import { progressWriter } from './requestStatus.ts';
import type { Resource } from './resources.ts';

const resource = {
  apiVersion: 'backup.liferay.cloud/v1alpha1',
  kind: 'BackupRequest',
  metadata: { name: 'r', namespace: 'ns' },
  spec: {},
} as Resource;

describe('progressWriter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes the first progress one interval after the start, then at most once per interval, one at a time', async () => {
    const writes: unknown[] = [];
    let finish: () => void = () => undefined;
    const updateStatus = vi.fn((_plural: string, _ref: unknown, next: (r: Resource) => unknown) => {
      writes.push(next({ ...resource, status: { state: 'InProgress' } }));
      return new Promise<undefined>((resolve) => {
        finish = () => {
          resolve(undefined);
        };
      });
    });
    const write = progressWriter(
      { updateStatus },
      { plural: 'backuprequests', resource, intervalMs: 100 },
      silentLogger,
    );
    write({ objectsDone: 0 }); // t=0: the run has just started
    vi.advanceTimersByTime(50);
    write({ objectsDone: 1 });
    expect(writes).toEqual([]);
    vi.advanceTimersByTime(60); // t=110
    write({ objectsDone: 2 });
    expect(writes).toEqual([{ progress: { objectsDone: 2 } }]);
    vi.advanceTimersByTime(150); // t=260, but the first write has not been answered yet
    write({ objectsDone: 3 });
    expect(writes).toHaveLength(1);
    finish();
    await vi.runAllTimersAsync();
    write({ objectsDone: 4 });
    expect(writes).toEqual([{ progress: { objectsDone: 2 } }, { progress: { objectsDone: 4 } }]);
  });

  it('writes nothing once the request is no longer InProgress', () => {
    const results: unknown[] = [];
    const updateStatus = vi.fn((_plural: string, _ref: unknown, next: (r: Resource) => unknown) => {
      results.push(next({ ...resource, status: { state: 'Succeeded' } }));
      return Promise.resolve(undefined);
    });
    const write = progressWriter(
      { updateStatus },
      { plural: 'backuprequests', resource, intervalMs: 10 },
      silentLogger,
    );
    vi.advanceTimersByTime(20);
    write({ objectsDone: 1 });
    expect(results).toEqual([undefined]);
  });
});
