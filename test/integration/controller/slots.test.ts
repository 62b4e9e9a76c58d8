// Slot Leases on the real API server when the view is stale: the controller decides from an
// informer (which lags) and its own writes, so these tests give ProjectSlots the stalest view
// there is (no Lease ever cached) and check that the conditional writes alone keep the limit.
import { CoordinationV1Api } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { GlobalLimit, ProjectSlots } from '../../../src/controller/slots.ts';
import { kubeClient, kubeConfig, useNamespace } from '../../env/fixtures.ts';

const ns = useNamespace('slots');
const kube = kubeClient();
const leases = kubeConfig().makeApiClient(CoordinationV1Api);

/** Holders of the pool's Leases as the API server has them (read with another client). */
async function holders(prefix: string, project: string): Promise<string[]> {
  const list = await leases.listNamespacedLease({ namespace: ns.name });
  return list.items
    .filter((l) => l.metadata?.name?.startsWith(`${prefix}-${project}-`) === true)
    .map((l) => l.spec?.holderIdentity ?? '')
    .filter((h) => h !== '')
    .sort();
}

function pool(prefix: string, active: (holder: string) => boolean): ProjectSlots {
  return new ProjectSlots(kube, {
    namespace: ns.name,
    prefix,
    holderActive: (holder) => Promise.resolve(active(holder)),
    // the stalest possible informer: it never shows a Lease
    cached: () => undefined,
  });
}

describe('ProjectSlots with a stale view', () => {
  it('never gives one slot to two holders, within one process or across two', async () => {
    const taken = new Set<string>();
    const a = pool('race', (h) => taken.has(h));
    const b = pool('race', (h) => taken.has(h));
    const names = Array.from({ length: 12 }, (_, i) => `r${i}`);
    // 12 takers at once for 3 slots, half through each "process"; each is first in its own line
    const decisions = await Promise.all(
      names.map(async (h, i) => {
        const d = await (i % 2 === 0 ? a : b).acquire('p', 3, h, { waiting: [h] });
        if (d.acquired) taken.add(h);
        return d;
      }),
    );
    const winners = names.filter((_, i) => decisions[i]?.acquired === true);
    expect(winners.length).toBeLessThanOrEqual(3);
    expect(await holders('race', 'p')).toEqual([...winners].sort());
    // the losers were told to look again soon (a race), or their place in line
    for (const d of decisions.filter((x) => !x.acquired)) {
      expect(d.contended === true || d.position !== undefined).toBe(true);
    }
    // asked again, the losers find the pool full: the slots stay with the winners
    for (const h of names.filter((n) => !winners.includes(n))) {
      const again = await a.acquire('p', 3, h, { waiting: [h] });
      if (again.acquired) taken.add(h);
    }
    const after = await holders('race', 'p');
    expect(after).toHaveLength(3);
    expect(new Set(after).size).toBe(3);
  });

  it('takes over the slot of a finished holder with one conditional write; gives a held one back', async () => {
    const finished = new Set<string>();
    const slots = pool('hand', (h) => !finished.has(h));
    expect((await slots.acquire('p', 1, 'first', { waiting: ['first'] })).acquired).toBe(true);
    // while `first` runs, `second` waits with its place in line
    const waiting = await slots.acquire('p', 1, 'second', { waiting: ['second'] });
    expect(waiting).toMatchObject({ acquired: false, position: 1 });
    // `first` finishes and writes no release: `second` takes the Lease over
    finished.add('first');
    expect((await slots.acquire('p', 1, 'second', { waiting: ['second'] })).acquired).toBe(true);
    expect(await holders('hand', 'p')).toEqual(['second']);
    // a holder that stops unfinished gives its slot back explicitly
    await slots.release('p', 1, 'second');
    expect(await holders('hand', 'p')).toEqual([]);
    expect((await slots.acquire('p', 1, 'third', { waiting: ['third'] })).acquired).toBe(true);
  });

  it('keeps a claimed slot from other takes of the process until its take or cancel; a take lost meanwhile falls back', async () => {
    const slots = pool('claim', () => true);
    const claim = await slots.claim('p', 1, 'first', ['first']);
    if (!('take' in claim)) throw new Error(`expected a claim, got ${JSON.stringify(claim)}`);
    // while `first` writes its status, the only slot is not free to anyone else here
    expect(await slots.acquire('p', 1, 'second', { waiting: ['second'] })).toMatchObject({ acquired: false });
    expect(await slots.claim('p', 1, 'third', ['third'])).toMatchObject({ acquired: false, position: 1 });
    // another process, whose view is as stale, writes the slot before `first` takes it
    const other = pool('claim', () => true);
    expect((await other.acquire('p', 1, 'elsewhere', { waiting: ['elsewhere'] })).acquired).toBe(true);
    // the take is conditional on the Lease as claimed: it loses, reads the Lease, and waits
    expect(await claim.take('normal')).toMatchObject({ acquired: false });
    expect(await holders('claim', 'p')).toEqual(['elsewhere']);
    // a cancelled claim frees the slot for the process's next take
    const again = await pool('claim2', () => true).claim('p', 1, 'fourth', ['fourth']);
    if (!('take' in again)) throw new Error('expected a claim');
    again.cancel();
    again.cancel();
    await expect(again.take('normal')).rejects.toThrow(/taken after its claim was given up/);
  });
});

describe('GlobalLimit', () => {
  it('lets at most the limit start across projects, counting its own written Leases; a finished holder frees one place', async () => {
    const finished = new Set<string>();
    const active = (holder: string): boolean => !finished.has(holder);
    // the informer shows nothing: the count must come from this process's own writes
    const slots = new ProjectSlots(kube, {
      namespace: ns.name,
      prefix: 'glob',
      holderActive: (holder) => Promise.resolve(active(holder)),
      cached: () => undefined,
      listed: () => [],
    });
    const global = new GlobalLimit(slots, 3, active);
    const take = async (holder: string, project: string): Promise<boolean> => {
      const place = global.admit();
      if (place === undefined) return false;
      try {
        return (await slots.acquire(project, 2, holder, { waiting: [holder] })).acquired;
      } finally {
        place.release();
      }
    };
    const names = Array.from({ length: 12 }, (_, i) => `g${i}`);
    const projectOf = (holder: string): string => `p${names.indexOf(holder) % 6}`;
    const first = await Promise.all(names.map((h) => take(h, projectOf(h))));
    const winners = names.filter((_, i) => first[i] === true);
    expect(winners).toHaveLength(3);
    expect(global.running()).toBe(3);
    const held = (await leases.listNamespacedLease({ namespace: ns.name })).items
      .filter((l) => l.metadata?.name?.startsWith('glob-') === true && (l.spec?.holderIdentity ?? '') !== '')
      .map((l) => l.spec?.holderIdentity ?? '')
      .sort();
    expect(held).toEqual([...winners].sort());

    // one of them finishes: exactly one more starts, whichever project it is in
    finished.add(winners[0] ?? '');
    // the count is kept between admits: a holder's change is told (the controller tells it from
    // the request's events and the run's end); until then the finished one still counts
    expect(global.running()).toBe(3);
    global.requestChanged(winners[0] ?? '');
    expect(global.running()).toBe(2);
    const losers = names.filter((n) => !winners.includes(n));
    const second = await Promise.all(losers.map((h) => take(h, projectOf(h))));
    expect(second.filter(Boolean)).toHaveLength(1);
    expect(global.running()).toBe(3);
  });

  it('refuses to count without an informer', () => {
    const slots = new ProjectSlots(kube, { namespace: ns.name, holderActive: () => Promise.resolve(true) });
    expect(() => new GlobalLimit(slots, 1, () => true).admit()).toThrow(
      /needs the slot Leases from an informer/,
    );
  });
});
