// Per-project concurrency held in the API server, so a controller restart keeps it: slot i of
// project p is the Lease `lc2-slot-<p>-<i>` whose holderIdentity is the request that runs in
// it. A slot whose holder is gone or finished is taken over. Waiting requests are served in
// creation order. The global limit is a second pool of the same kind (`lc2-limit-global-<i>`),
// taken after the project's slot.
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { httpCode, microTime } from './kube.ts';

/** Labels that let a pool's Leases be read in one LIST. */
const poolLabel = 'backup.liferay.cloud/slot-pool';
const projectLabel = 'backup.liferay.cloud/slot-project';

export interface SlotDecision {
  acquired: boolean;
  /** Slots of the project in use (including ours when acquired). */
  busy: number;
  limit: number;
  /** 1-based place in line when not acquired. */
  position?: number;
}

/** A stable place in 0..n-1 for a holder (FNV-1a of its name), so takers spread over the slots. */
function spread(holder: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < holder.length; i++) h = Math.imul(h ^ holder.charCodeAt(i), 0x01000193);
  return n === 0 ? 0 : (h >>> 0) % n;
}

export class ProjectSlots {
  private readonly api: CoordinationV1Api;
  private readonly namespace: string;
  /** Whether the request holding a slot still needs it (it exists and is not finished). */
  private readonly holderActive: (holder: string) => Promise<boolean>;

  private readonly prefix: string;

  /** `prefix` names the pool's Leases: `<prefix>-<project>-<i>` (default lc2-slot). */
  constructor(
    kc: KubeConfig,
    namespace: string,
    holderActive: (holder: string) => Promise<boolean>,
    prefix = 'lc2-slot',
  ) {
    this.prefix = prefix;
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.namespace = namespace;
    this.holderActive = holderActive;
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

  /** The pool's Leases by slot index, in one LIST (not one GET per slot). */
  private async readPool(project: string, limit: number): Promise<(V1Lease | undefined)[]> {
    const list = await this.api.listNamespacedLease({
      namespace: this.namespace,
      labelSelector: `${poolLabel}=${this.prefix},${projectLabel}=${project}`,
    });
    const byName = new Map(list.items.map((lease) => [lease.metadata?.name, lease]));
    return Array.from({ length: limit }, (_, i) => byName.get(this.leaseName(project, i)));
  }

  /**
   * Takes a slot for `holder` if one is free and `holder` is first in line (`waiting` = the
   * project's waiting requests in creation order, `holder` among them).
   */
  async acquire(project: string, limit: number, holder: string, waiting: string[]): Promise<SlotDecision> {
    const leases = await this.readPool(project, limit);
    if (leases.some((l) => l?.spec?.holderIdentity === holder))
      return { acquired: true, busy: leases.filter((l) => l?.spec?.holderIdentity).length, limit };
    const active = await Promise.all(
      leases.map((lease) => {
        const owner = lease?.spec?.holderIdentity;
        return owner === undefined || owner === '' ? Promise.resolve(false) : this.holderActive(owner);
      }),
    );
    const free = active.flatMap((isActive, i) => (isActive ? [] : [i]));
    const busy = limit - free.length;
    const place = Math.max(0, waiting.indexOf(holder));
    if (place >= free.length) return { acquired: false, busy, limit, position: place - free.length + 1 };
    // concurrent takers start at different free slots (from their name), so they rarely collide
    const start = spread(holder, free.length);
    for (const i of [...free.slice(start), ...free.slice(0, start)]) {
      if (await this.take({ project, i, current: leases[i] }, holder))
        return { acquired: true, busy: busy + 1, limit };
    }
    return { acquired: false, busy: limit, limit, position: place + 1 };
  }

  private async take(
    slot: { project: string; i: number; current: V1Lease | undefined },
    holder: string,
  ): Promise<boolean> {
    const name = this.leaseName(slot.project, slot.i);
    const spec = { holderIdentity: holder, acquireTime: microTime(), renewTime: microTime() };
    const metadata = { name, labels: this.labels(slot.project) };
    try {
      if (slot.current === undefined) {
        await this.api.createNamespacedLease({ namespace: this.namespace, body: { metadata, spec } });
      } else {
        // the resourceVersion makes the take-over conditional: a concurrent taker gets 409
        const resourceVersion = slot.current.metadata?.resourceVersion;
        await this.api.replaceNamespacedLease({
          name,
          namespace: this.namespace,
          body: { metadata: { ...metadata, resourceVersion }, spec },
        });
      }
      return true;
    } catch (err) {
      // another controller (or request) took it between our read and our write
      if (httpCode(err) === 409) {
        if (slot.current === undefined) await this.adoptUnlabelled(name, slot.project);
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
   * A Lease of this name exists but the pool's LIST did not find it: one written by an older
   * version, without the pool labels. Label it (keeping its holder) so the next round sees it.
   */
  private async adoptUnlabelled(name: string, project: string): Promise<void> {
    const lease = await this.api
      .readNamespacedLease({ name, namespace: this.namespace })
      .catch(() => undefined);
    const labels = lease?.metadata?.labels ?? {};
    if (lease === undefined || labels[poolLabel] === this.prefix) return;
    await this.rewrite(lease, { ...labels, ...this.labels(project) }, lease.spec).catch(() => undefined);
  }

  /** Replaces a Lease as read (its resourceVersion makes the write conditional: 409 if it moved). */
  private rewrite(
    lease: V1Lease,
    labels: Record<string, string> | undefined,
    spec: V1Lease['spec'],
  ): Promise<V1Lease> {
    const name = lease.metadata?.name ?? '';
    return this.api.replaceNamespacedLease({
      name,
      namespace: this.namespace,
      body: { metadata: { name, resourceVersion: lease.metadata?.resourceVersion, labels }, spec },
    });
  }

  /** Frees the slot `holder` has, if any. */
  async release(project: string, limit: number, holder: string): Promise<void> {
    const leases = await this.readPool(project, limit);
    for (const lease of leases) {
      if (lease?.spec?.holderIdentity !== holder) continue;
      await this.rewrite(lease, lease.metadata?.labels, { holderIdentity: '' }).catch((err: unknown) => {
        if (httpCode(err) !== 409 && httpCode(err) !== 404) throw err;
      });
    }
  }
}
