// Per-project concurrency held in the API server, so a controller restart keeps it: slot i of
// project p is the Lease `lc2-slot-<p>-<i>` whose holderIdentity is the request that runs in
// it. A slot whose holder is gone or finished is taken over. Waiting requests are served in
// creation order. The global limit is a second pool of the same kind (`lc2-limit-global-<i>`),
// taken after the project's slot.
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { httpCode, microTime } from './kube.ts';

export interface SlotDecision {
  acquired: boolean;
  /** Slots of the project in use (including ours when acquired). */
  busy: number;
  limit: number;
  /** 1-based place in line when not acquired. */
  position?: number;
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

  private async read(name: string): Promise<V1Lease | undefined> {
    try {
      return await this.api.readNamespacedLease({ name, namespace: this.namespace });
    } catch (err) {
      if (httpCode(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * Takes a slot for `holder` if one is free and `holder` is first in line (`waiting` = the
   * project's waiting requests in creation order, `holder` among them).
   */
  async acquire(project: string, limit: number, holder: string, waiting: string[]): Promise<SlotDecision> {
    const leases = await Promise.all(
      Array.from({ length: limit }, (_, i) => this.read(this.leaseName(project, i))),
    );
    const free: number[] = [];
    let busy = 0;
    for (const [i, lease] of leases.entries()) {
      const owner = lease?.spec?.holderIdentity;
      if (owner === holder)
        return { acquired: true, busy: leases.filter((l) => l?.spec?.holderIdentity).length, limit };
      if (owner !== undefined && owner !== '' && (await this.holderActive(owner))) busy++;
      else free.push(i);
    }
    const place = Math.max(0, waiting.indexOf(holder));
    if (place >= free.length) return { acquired: false, busy, limit, position: place - free.length + 1 };
    for (const i of free) {
      if (await this.take(this.leaseName(project, i), leases[i], holder))
        return { acquired: true, busy: busy + 1, limit };
    }
    return { acquired: false, busy: limit, limit, position: place + 1 };
  }

  private async take(name: string, current: V1Lease | undefined, holder: string): Promise<boolean> {
    const spec = { holderIdentity: holder, acquireTime: microTime(), renewTime: microTime() };
    try {
      if (current === undefined) {
        await this.api.createNamespacedLease({
          namespace: this.namespace,
          body: { metadata: { name, labels: { 'app.kubernetes.io/part-of': 'lc2-backup' } }, spec },
        });
      } else {
        await this.api.replaceNamespacedLease({
          name,
          namespace: this.namespace,
          // the resourceVersion makes the take-over conditional: a concurrent taker gets 409
          body: {
            metadata: {
              name,
              resourceVersion: current.metadata?.resourceVersion,
              labels: current.metadata?.labels,
            },
            spec,
          },
        });
      }
      return true;
    } catch (err) {
      // another controller (or request) took it between our read and our write
      if (httpCode(err) === 409) return false;
      if (httpCode(err) === 404) {
        throw new Error(
          `controller.namespace: namespace "${this.namespace}" (where the per-project slot Leases live) does not exist; create it or set controller.namespace to the controller's own namespace`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Frees the slot `holder` has, if any. */
  async release(project: string, limit: number, holder: string): Promise<void> {
    for (let i = 0; i < limit; i++) {
      const name = this.leaseName(project, i);
      const lease = await this.read(name);
      if (lease?.spec?.holderIdentity !== holder) continue;
      await this.api
        .replaceNamespacedLease({
          name,
          namespace: this.namespace,
          body: {
            metadata: {
              name,
              resourceVersion: lease.metadata?.resourceVersion,
              labels: lease.metadata?.labels,
            },
            spec: { holderIdentity: '' },
          },
        })
        .catch((err: unknown) => {
          if (httpCode(err) !== 409 && httpCode(err) !== 404) throw err;
        });
    }
  }
}
