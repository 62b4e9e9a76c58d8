// Per-project concurrency held in the API server, so a controller restart keeps it: slot i of
// project p is the Lease `lc2-slot-<p>-<i>` whose holderIdentity is the request that runs in
// it. A slot whose holder is gone or finished is taken over. Waiting requests are served in
// creation order. The global limit is counted over every project's slots (GlobalLimit), so a
// starting request writes one Lease. The pools are read from an informer over the slot Leases
// (no call per decision), overlaid with this process's own writes until the informer shows them;
// every write is conditional on the resourceVersion read, so a stale view costs a 409, never a
// slot taken twice.
import { httpCode, type KubeClient } from '../kube/client.ts';
import { leasePath } from '../kube/paths.ts';
import type { Priority } from '../kube/scheduler.ts';
import { microTime, OwnWrites, type Lease } from '../kube/types.ts';

/** Labels that let a pool's Leases be read in one LIST (or watched). */
export const poolLabel = 'backup.liferay.cloud/slot-pool';
const projectLabel = 'backup.liferay.cloud/slot-project';

export interface SlotDecision {
  acquired: boolean;
  /** Slots of the project in use (including ours when acquired). */
  busy: number;
  limit: number;
  /** 1-based place in line when not acquired. */
  position?: number;
  /** Lost a race for a slot the view showed free: look again soon, not at the next recheck. */
  contended?: boolean;
}

/** A free slot claimed for a holder in this process and not yet written (ProjectSlots.claim). */
export interface SlotClaim {
  /** Writes the Lease; a take lost to a stale view tries the project's other free slots once more. */
  take: (priority: Priority) => Promise<SlotDecision>;
  /** Gives the claim up (after a take, or without one); safe to call more than once. */
  cancel: () => void;
}

/** Slot `i` of a project's pool, as the Lease was read (undefined: none written yet). */
interface SlotRead {
  project: string;
  i: number;
  current: Lease | undefined;
}

/** A take lost to a stale view: look again soon, keeping the place in line. */
function contended(limit: number, place: number): SlotDecision {
  return { acquired: false, busy: limit, limit, position: place + 1, contended: true };
}

/** Slots tried by one decision before it gives up (each failure costs a write and a read). */
const maxTries = 3;

/** A stable place in 0..n-1 for a holder (FNV-1a of its name), so takers spread over the slots. */
function spread(holder: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < holder.length; i++) h = Math.imul(h ^ holder.charCodeAt(i), 0x01000193);
  return n === 0 ? 0 : (h >>> 0) % n;
}

export interface SlotPoolOptions {
  namespace: string;
  /** Whether the request holding a slot still needs it (it exists and is not finished). */
  holderActive: (holder: string) => Promise<boolean>;
  /** Names the pool's Leases: `<prefix>-<project>-<i>` (default lc2-slot). */
  prefix?: string;
  /** The slot Leases of the namespace as an informer sees them; without it, a LIST per decision. */
  cached?: (name: string) => Lease | undefined;
  /** Every Lease the informer holds (the global count needs it; see GlobalLimit). */
  listed?: () => Lease[];
}

export class ProjectSlots {
  private readonly kube: KubeClient;
  private readonly namespace: string;
  private readonly holderActive: (holder: string) => Promise<boolean>;
  private readonly prefix: string;
  private readonly cached: ((name: string) => Lease | undefined) | undefined;
  private readonly listed: (() => Lease[]) | undefined;
  /** Told of each Lease this process writes or reads, by name (GlobalLimit looks at it again). */
  private readonly changeListeners: ((name: string) => void)[] = [];
  /** Leases this process wrote or read, until the informer shows them (or something newer). */
  private readonly written = new OwnWrites<Lease>();
  /** Leases a take of this process is writing now: no other take of ours tries them meanwhile. */
  private readonly claimed = new Set<string>();

  constructor(kube: KubeClient, options: SlotPoolOptions) {
    this.kube = kube;
    this.prefix = options.prefix ?? 'lc2-slot';
    this.namespace = options.namespace;
    this.holderActive = options.holderActive;
    this.cached = options.cached;
    this.listed = options.listed;
  }

  /**
   * The names of this pool's slot Leases, every project's, as this process sees them now (the
   * informer and its own writes), without a call. Undefined without an informer.
   */
  poolLeaseNames(): string[] | undefined {
    const { listed } = this;
    if (listed === undefined || this.cached === undefined) return undefined;
    const names = new Set(this.written.keys());
    for (const lease of listed()) {
      if (lease.metadata.labels?.[poolLabel] === this.prefix) names.add(lease.metadata.name);
    }
    return [...names];
  }

  /** Who holds slot Lease `name` as this process sees it now (undefined: nobody, or not a slot). */
  holderNow(name: string): string | undefined {
    const lease = this.known(name, this.cached?.(name));
    if (lease?.metadata.labels?.[poolLabel] !== this.prefix) return undefined;
    const holder = lease.spec?.holderIdentity;
    return holder === undefined || holder === '' ? undefined : holder;
  }

  private leaseName(project: string, i: number): string {
    return `${this.prefix}-${project}-${i}`;
  }

  private labels(project: string): Record<string, string> {
    return {
      'app.kubernetes.io/part-of': 'lc2-backup',
      [poolLabel]: this.prefix,
      [projectLabel]: project,
    };
  }

  /** The newest of the informer's copy and our own last write of a Lease. */
  private known(name: string, cached: Lease | undefined): Lease | undefined {
    return this.written.newest(name, cached);
  }

  private remember(lease: Lease): void {
    this.written.remember(lease.metadata.name, lease);
    for (const listener of this.changeListeners) listener(lease.metadata.name);
  }

  /** Calls `listener` after each Lease this process writes (or reads after a lost race). */
  onChange(listener: (name: string) => void): void {
    this.changeListeners.push(listener);
  }

  /** The pool's Leases by slot index: from the informer, else in one LIST (not a GET per slot). */
  private async readPool(project: string, limit: number): Promise<(Lease | undefined)[]> {
    const names = Array.from({ length: limit }, (_, i) => this.leaseName(project, i));
    const { cached } = this;
    if (cached !== undefined) return names.map((name) => this.known(name, cached(name)));
    const list = await this.kube.request<{ items: Lease[] }>('GET', leasePath(this.namespace), {
      query: { labelSelector: `${poolLabel}=${this.prefix},${projectLabel}=${project}` },
    });
    const byName = new Map(list.items.map((lease) => [lease.metadata.name, lease]));
    return names.map((name) => this.known(name, byName.get(name)));
  }

  /**
   * Takes a slot for `holder` if one is free and `holder` is first in line (`waiting` = the
   * project's waiting requests in creation order, `holder` among them). A slot another take of
   * this process is writing is not free; at most `maxTries` slots are tried (each loss means the
   * view was stale: `contended`, look again soon).
   */
  async acquire(
    project: string,
    limit: number,
    holder: string,
    options: { waiting: string[]; priority?: Priority },
  ): Promise<SlotDecision> {
    const plan = await this.plan(project, limit, holder, options.waiting);
    if (plan.decision !== undefined) return plan.decision;
    for (const i of plan.tries) {
      if (await this.take({ project, i, current: plan.leases[i] }, holder, options.priority ?? 'normal'))
        return { acquired: true, busy: plan.busy + 1, limit };
    }
    return contended(limit, plan.place);
  }

  /**
   * Decides as `acquire` does and, when a slot is free for `holder`, claims it in this process
   * (no other take of ours tries it) without writing it yet: the caller writes what it must first
   * (the request's InProgress status, its first answer) and then `take`s, or `cancel`s. A decision
   * is returned when `holder` holds a slot already or must wait.
   */
  async claim(
    project: string,
    limit: number,
    holder: string,
    waiting: string[],
  ): Promise<SlotDecision | SlotClaim> {
    const plan = await this.plan(project, limit, holder, waiting);
    if (plan.decision !== undefined) return plan.decision;
    const i = plan.tries.find((t) => !this.claimed.has(this.leaseName(project, t)));
    if (i === undefined) return contended(limit, plan.place);
    const name = this.leaseName(project, i);
    this.claimed.add(name);
    let open = true;
    const cancel = (): void => {
      if (open) this.claimed.delete(name);
      open = false;
    };
    return {
      cancel,
      take: async (priority) => {
        if (!open) throw new Error(`slot Lease ${name}: taken after its claim was given up`);
        let won: boolean;
        try {
          // conditional on the Lease as planned: anything written to it meanwhile makes this a 409
          won = await this.write({ project, i, current: plan.leases[i] }, holder, priority);
        } finally {
          cancel();
        }
        if (won) return { acquired: true, busy: plan.busy + 1, limit };
        // lost to a view that was stale: the project's other free slots, as read again
        return this.acquire(project, limit, holder, { waiting, priority });
      },
    };
  }

  /**
   * What `acquire` would do, without writing: `acquired` when `holder` has a slot already;
   * a position when it would wait; `undefined` when it is its turn and a slot looks free.
   */
  async preview(
    project: string,
    limit: number,
    holder: string,
    waiting: string[],
  ): Promise<SlotDecision | undefined> {
    return (await this.plan(project, limit, holder, waiting)).decision;
  }

  private async plan(
    project: string,
    limit: number,
    holder: string,
    waiting: string[],
  ): Promise<{
    decision?: SlotDecision;
    leases: (Lease | undefined)[];
    tries: number[];
    busy: number;
    place: number;
  }> {
    const leases = await this.readPool(project, limit);
    const none = { leases, tries: [], busy: limit, place: 0 };
    if (leases.some((l) => l?.spec?.holderIdentity === holder)) {
      const busy = leases.filter((l) => l?.spec?.holderIdentity).length;
      return { ...none, decision: { acquired: true, busy, limit } };
    }
    const active = await Promise.all(
      leases.map((lease, i) => {
        if (this.claimed.has(this.leaseName(project, i))) return Promise.resolve(true);
        const owner = lease?.spec?.holderIdentity;
        return owner === undefined || owner === '' ? Promise.resolve(false) : this.holderActive(owner);
      }),
    );
    const free = active.flatMap((isActive, i) => (isActive ? [] : [i]));
    const busy = limit - free.length;
    const place = Math.max(0, waiting.indexOf(holder));
    if (place >= free.length) {
      return { ...none, busy, decision: { acquired: false, busy, limit, position: place - free.length + 1 } };
    }
    // concurrent takers start at different free slots (from their name), so they rarely collide
    const start = spread(holder, free.length);
    const tries = [...free.slice(start), ...free.slice(0, start)].slice(0, maxTries);
    return { leases, tries, busy, place };
  }

  private async take(slot: SlotRead, holder: string, priority: Priority): Promise<boolean> {
    const name = this.leaseName(slot.project, slot.i);
    if (this.claimed.has(name)) return false;
    this.claimed.add(name);
    try {
      return await this.write(slot, holder, priority);
    } finally {
      this.claimed.delete(name);
    }
  }

  /** Writes slot Lease `slot` for `holder`: false when another writer got there first. */
  private async write(slot: SlotRead, holder: string, priority: Priority): Promise<boolean> {
    const name = this.leaseName(slot.project, slot.i);
    const spec = { holderIdentity: holder, acquireTime: microTime(), renewTime: microTime() };
    const metadata = { name, labels: this.labels(slot.project) };
    try {
      if (slot.current === undefined) {
        this.remember(
          await this.kube.request<Lease>('POST', leasePath(this.namespace), {
            body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata, spec },
            priority,
          }),
        );
      } else {
        // the resourceVersion makes the take-over conditional: a concurrent taker gets 409
        await this.rewrite(slot.current, { labels: metadata.labels, spec, priority });
      }
      return true;
    } catch (err) {
      // another controller (or request) took it between our read and our write: learn its state
      if (httpCode(err) === 409) {
        await this.refresh(name, slot.project);
        return false;
      }
      if (httpCode(err) === 404) {
        throw new Error(
          `controller.namespace: namespace "${this.namespace}" (where the per-project slot Leases live) does not exist; create it or set controller.namespace to the controller's own namespace`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * A write lost to a stale view: read the Lease so the next decision sees it. One written by an
   * older version without the pool labels (invisible to the pool's informer and LIST) is
   * labelled, keeping its holder.
   */
  private async refresh(name: string, project: string): Promise<void> {
    const lease = await this.kube.get<Lease>(leasePath(this.namespace, name)).catch(() => undefined);
    if (lease === undefined) return;
    const labels = lease.metadata.labels ?? {};
    if (labels[poolLabel] === this.prefix) {
      this.remember(lease);
      return;
    }
    await this.rewrite(lease, { labels: { ...labels, ...this.labels(project) }, spec: lease.spec }).catch(
      () => undefined,
    );
  }

  /** Replaces a Lease as read (its resourceVersion makes the write conditional: 409 if it moved). */
  private async rewrite(
    lease: Lease,
    change: { labels: Record<string, string> | undefined; spec: Lease['spec']; priority?: Priority },
  ): Promise<Lease> {
    const { labels, spec } = change;
    const { name, resourceVersion } = lease.metadata;
    const written = await this.kube.request<Lease>('PUT', leasePath(this.namespace, name), {
      body: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, resourceVersion, labels },
        spec,
      },
      priority: change.priority ?? 'normal',
    });
    this.remember(written);
    return written;
  }

  /** Frees the slot `holder` has, if any (a stale view is read again on a conflict). */
  async release(project: string, limit: number, holder: string): Promise<void> {
    const leases = await this.readPool(project, limit);
    for (const seen of leases) {
      let lease = seen;
      for (let attempt = 0; attempt < 3 && lease?.spec?.holderIdentity === holder; attempt++) {
        try {
          await this.rewrite(lease, { labels: lease.metadata.labels, spec: { holderIdentity: '' } });
          break;
        } catch (err) {
          if (httpCode(err) === 404) break;
          if (httpCode(err) !== 409) throw err;
          lease = await this.kube.get<Lease>(leasePath(this.namespace, lease.metadata.name));
        }
      }
    }
  }
}

/**
 * The global limit, counted over every project's slot Leases rather than held in a pool of its
 * own: a starting request writes one Lease, and what survives a restart is the project slots
 * themselves. Only the leader takes slots, so the count it sees (the informer plus its own
 * writes) and the takes it has in flight are the whole of it. `admit` counts and reserves in one
 * synchronous step, so no two takes of this process pass on the same free place; a take that has
 * been written and is still reserved counts twice for a moment, which only makes a request wait.
 *
 * The count is kept up to date rather than taken on each admit (walking every Lease and looking
 * up its holder on each admit cost about a second of CPU in a burst of 1,000 requests): it is
 * taken once, at the first admit, and then each slot Lease is looked at again when it changes
 * (`leaseChanged`: the informer's events and this process's own writes), and the slots of a
 * request when the request changes (`requestChanged`: it started, finished, was deleted or was
 * created again under the same name). A change it is not told of can only leave a finished
 * holder counted until its request's next event — a request waits a moment longer, never one
 * too many runs.
 */
export class GlobalLimit {
  readonly limit: number;
  private readonly slots: ProjectSlots;
  /** Whether a holder still needs its slot, from what is known without a call. */
  private readonly activeNow: (holder: string) => boolean;
  private reserved = 0;
  /** Whether the slot Leases have been counted once (at the first admit). */
  private counted = false;
  /** Slots held by active holders. */
  private held = 0;
  /** Slot Lease name → its holder, and whether that holder is counted as running. */
  private readonly bySlot = new Map<string, { holder: string; active: boolean }>();
  /** Holder (namespace/name) → the slot Leases that name it. */
  private readonly byHolder = new Map<string, Set<string>>();

  constructor(slots: ProjectSlots, limit: number, activeNow: (holder: string) => boolean) {
    this.slots = slots;
    this.limit = limit;
    this.activeNow = activeNow;
    slots.onChange((name) => {
      this.leaseChanged(name);
    });
  }

  /** Slot Lease `name` changed (or appeared, or was deleted). */
  leaseChanged(name: string): void {
    if (this.counted) this.look(name);
  }

  /** A BackupRequest (namespace/name) changed: the slots it holds are looked at again. */
  requestChanged(key: string): void {
    const names = this.byHolder.get(key);
    if (!this.counted || names === undefined) return;
    for (const name of [...names]) this.look(name);
  }

  /** Takes slot Lease `name` out of the count, then puts it back as it is now. */
  private look(name: string): void {
    const before = this.bySlot.get(name);
    if (before !== undefined) {
      if (before.active) this.held--;
      this.bySlot.delete(name);
      const names = this.byHolder.get(before.holder);
      names?.delete(name);
      if (names?.size === 0) this.byHolder.delete(before.holder);
    }
    const holder = this.slots.holderNow(name);
    if (holder === undefined) return;
    const active = this.activeNow(holder);
    if (active) this.held++;
    this.bySlot.set(name, { holder, active });
    const names = this.byHolder.get(holder) ?? new Set<string>();
    names.add(name);
    this.byHolder.set(holder, names);
  }

  /** Requests running now, counted without a call: slots held by active holders, and reservations. */
  running(): number {
    if (!this.counted) {
      const names = this.slots.poolLeaseNames();
      if (names === undefined) {
        throw new Error(
          'controller: the global limit needs the slot Leases from an informer (SlotPoolOptions.listed)',
        );
      }
      this.counted = true;
      for (const name of names) this.look(name);
    }
    return this.held + this.reserved;
  }

  /**
   * A place for one take if fewer than `limit` requests run; release it once the take is written
   * or lost. Undefined when the limit is reached.
   */
  admit(): { release: () => void } | undefined {
    if (this.running() >= this.limit) return undefined;
    this.reserved++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.reserved--;
      },
    };
  }
}
