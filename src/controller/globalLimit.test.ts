import { describe, expect, it } from 'vitest';
import type { KubeClient } from '../kube/client.ts';
import type { Lease } from '../kube/types.ts';
import { GlobalLimit, poolLabel, ProjectSlots } from './slots.ts';

/** Slot Leases as an informer would hold them; no API call is made by the count. */
function pool(): {
  leases: Map<string, Lease>;
  set: (name: string, holder: string) => void;
  slots: ProjectSlots;
} {
  const leases = new Map<string, Lease>();
  let version = 0;
  const set = (name: string, holder: string): void => {
    version++;
    leases.set(name, {
      metadata: { name, resourceVersion: String(version), labels: { [poolLabel]: 'lc2-slot' } },
      spec: { holderIdentity: holder },
    });
  };
  const slots = new ProjectSlots({} as KubeClient, {
    namespace: 'ns',
    holderActive: () => Promise.resolve(true),
    cached: (name) => leases.get(name),
    listed: () => [...leases.values()],
  });
  return { leases, set, slots };
}

describe('GlobalLimit', () => {
  it('keeps its count as slot Leases and their holders change, as a full count would', () => {
    const { leases, set, slots } = pool();
    const finished = new Set<string>();
    const active = (holder: string): boolean => !finished.has(holder);
    set('lc2-slot-a-0', 'ns-a/r1');
    set('lc2-slot-a-1', 'ns-a/r2');
    set('lc2-slot-b-0', 'ns-b/r1');
    set('lc2-slot-b-1', '');
    const global = new GlobalLimit(slots, 4, active);
    /** The kept count is `n`, and a full count over the Leases says the same. */
    const expectRunning = (n: number): void => {
      const full = [...leases.values()].filter((l) => {
        const holder = l.spec?.holderIdentity ?? '';
        return holder !== '' && active(holder);
      }).length;
      expect([global.running(), full]).toEqual([n, n]);
    };
    /** A slot Lease is written with `holder`, and the limit is told (as the informer tells it). */
    const write = (name: string, holder: string): void => {
      set(name, holder);
      global.leaseChanged(name);
    };
    expectRunning(3);

    // a request finishes: counted until its change is told
    finished.add('ns-a/r1');
    expect(global.running()).toBe(3);
    global.requestChanged('ns-a/r1');
    expectRunning(2);

    // the slot is taken over by the next request, a free slot is taken, one is deleted
    write('lc2-slot-a-0', 'ns-a/r3');
    write('lc2-slot-b-1', 'ns-b/r2');
    expectRunning(4);
    expect(global.admit()).toBeUndefined();
    leases.delete('lc2-slot-b-0');
    global.leaseChanged('lc2-slot-b-0');
    expectRunning(3);

    // a request created again under a finished holder's name runs again
    finished.add('ns-c/r1');
    write('lc2-slot-c-0', 'ns-c/r1');
    expectRunning(3);
    finished.delete('ns-c/r1');
    global.requestChanged('ns-c/r1');
    expectRunning(4);

    // a request holding two slots (one left behind by a crash) is looked at in both
    write('lc2-slot-a-1', 'ns-a/r3');
    finished.add('ns-a/r3');
    global.requestChanged('ns-a/r3');
    expectRunning(2);
  });

  it('admits up to the limit, counting the takes in flight', () => {
    const { set, slots } = pool();
    set('lc2-slot-a-0', 'ns-a/r1');
    const global = new GlobalLimit(slots, 3, () => true);
    const first = global.admit();
    const second = global.admit();
    expect(first).toBeDefined();
    expect(second).toBeDefined();
    expect(global.admit()).toBeUndefined();
    first?.release();
    first?.release();
    expect(global.running()).toBe(2);
  });
});
