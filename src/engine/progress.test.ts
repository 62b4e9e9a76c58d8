import { describe, expect, it } from 'vitest';
import type { Progress } from '../../api/v1alpha1/common.ts';
import { ProgressTracker } from './progress.ts';

describe('progress', () => {
  it('reports totals, done, rate and ETA at a bounded rate', () => {
    const seen: Progress[] = [];
    const tracker = new ProgressTracker('documentLibrary', (p) => seen.push(p), 60_000);
    tracker.setTotals(3, 300);
    for (let i = 0; i < 3; i++) tracker.add(1, 100);
    // totals and finish are always reported; the adds in between are throttled away
    expect(seen).toHaveLength(1);
    const last = tracker.finish();
    expect(seen).toHaveLength(2);
    expect(last).toMatchObject({
      phase: 'documentLibrary',
      objectsDone: 3,
      objectsTotal: 3,
      bytesDone: 300,
      bytesTotal: 300,
      etaSeconds: 0,
    });
    expect(last.bytesPerSecond).toBeGreaterThan(0);
  });
});
