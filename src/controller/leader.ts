// Leader election with a coordination.k8s.io Lease, the way client-go does it: the leader
// renews the Lease every retry period; a candidate takes it over once it has seen the same
// record unchanged for a whole lease duration (its own clock only, so clock skew between
// replicas does not matter). A leader that cannot renew within the renew deadline — shorter
// than the lease duration — steps down before anyone else can take over, so two replicas never
// work at once. A leader that stops cleanly releases the Lease and the other takes over at its
// next retry.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpCode, type KubeClient } from '../kube/client.ts';
import { leasePath } from '../kube/paths.ts';
import { microTime, type Lease } from '../kube/types.ts';
import type { Logger } from '../observability/logger.ts';

export interface LeaderElectionOptions {
  kube: KubeClient;
  namespace: string;
  /** The Lease's name; default lc2-backup-leader. */
  name?: string;
  /** Default: <hostname>-<random>. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
}

export class LeaderElector {
  readonly identity: string;
  private readonly kube: KubeClient;
  private readonly namespace: string;
  private readonly name: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: Logger;
  private readonly lostController = new AbortController();
  private observed: { record: string; at: number } | undefined;
  private renewing: Promise<void> | undefined;
  private stopping = false;

  constructor(options: LeaderElectionOptions) {
    this.kube = options.kube;
    this.namespace = options.namespace;
    this.name = options.name ?? 'lc2-backup-leader';
    this.identity = options.identity ?? `${hostname()}-${randomBytes(4).toString('hex')}`;
    this.leaseDurationMs = options.leaseDurationMs ?? 10_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 7_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.log = options.log;
    if (this.renewDeadlineMs >= this.leaseDurationMs) {
      throw new Error('leader election: renewDeadlineMs must be shorter than leaseDurationMs');
    }
  }

  /** Fires when this replica stops being the leader (renewal failed, or the Lease was taken). */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  /** Resolves once this replica leads (then keeps renewing); rejects when `signal` aborts first. */
  async acquire(signal: AbortSignal): Promise<void> {
    let announced = false;
    for (;;) {
      signal.throwIfAborted();
      try {
        if (await this.tryAcquireOrRenew()) break;
      } catch (err) {
        this.log.warn(`leader election: could not read or write Lease ${this.leaseRef()}: ${String(err)}`);
      }
      if (!announced) {
        this.log.info(`leader election: waiting for Lease ${this.leaseRef()} (identity ${this.identity})`);
        announced = true;
      }
      await sleep(this.retryPeriodMs, undefined, { signal });
    }
    this.log.info(`leader election: became the leader (Lease ${this.leaseRef()}, identity ${this.identity})`);
    this.renewing = this.renewLoop();
  }

  /** Stops renewing and gives the Lease up so the other replica takes over at once. */
  async release(): Promise<void> {
    this.stopping = true;
    await this.renewing;
    if (this.lost.aborted) return;
    const lease = await this.read().catch(() => undefined);
    if (lease?.spec?.holderIdentity !== this.identity) return;
    await this.write(lease, { holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() }).catch(
      (err: unknown) => {
        this.log.warn(`leader election: could not release Lease ${this.leaseRef()}: ${String(err)}`);
      },
    );
  }

  private leaseRef(): string {
    return `${this.namespace}/${this.name}`;
  }

  private async renewLoop(): Promise<void> {
    let lastRenew = Date.now();
    for (;;) {
      await sleep(this.retryPeriodMs);
      if (this.stopping) return;
      let renewed = false;
      try {
        renewed = await this.tryAcquireOrRenew();
      } catch (err) {
        this.log.warn(`leader election: renewing Lease ${this.leaseRef()} failed: ${String(err)}`);
      }
      if (renewed) {
        lastRenew = Date.now();
        continue;
      }
      const holder = this.observed?.record.split('|')[0];
      if (holder !== undefined && holder !== this.identity && holder !== '') {
        this.stepDown(`the Lease is held by ${holder} now`);
        return;
      }
      if (Date.now() - lastRenew >= this.renewDeadlineMs) {
        this.stepDown(`no renewal within the renew deadline (${this.renewDeadlineMs} ms)`);
        return;
      }
    }
  }

  private stepDown(why: string): void {
    this.log.warn(`leader election: lost leadership of Lease ${this.leaseRef()}: ${why}`);
    this.lostController.abort(new LeadershipLostError(why));
  }

  private read(): Promise<Lease | undefined> {
    return this.kube.get<Lease>(leasePath(this.namespace, this.name));
  }

  /** One round: create, renew, or take over an expired Lease. True when we hold it afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const lease = await this.read();
    const spec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      renewTime: microTime(),
    };
    if (lease === undefined) return this.create({ ...spec, acquireTime: microTime(), leaseTransitions: 0 });
    const current = lease.spec ?? {};
    const holder = current.holderIdentity ?? '';
    const record = `${holder}|${lease.metadata.resourceVersion ?? ''}`;
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const transitions = current.leaseTransitions ?? 0;
    if (holder === this.identity) {
      const acquireTime = microTime(current.acquireTime ?? new Date());
      return this.write(lease, { ...spec, acquireTime, leaseTransitions: transitions });
    }
    // a holder's term runs a lease duration from when we last saw its record change
    const term = (current.leaseDurationSeconds ?? 0) * 1000;
    if (holder !== '' && Date.now() - this.observed.at < term) return false;
    return this.write(lease, { ...spec, acquireTime: microTime(), leaseTransitions: transitions + 1 });
  }

  private async create(spec: NonNullable<Lease['spec']>): Promise<boolean> {
    try {
      await this.kube.request('POST', leasePath(this.namespace), {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, labels: { 'app.kubernetes.io/part-of': 'lc2-backup' } },
          spec,
        },
      });
      return true;
    } catch (err) {
      if (httpCode(err) === 409) return false;
      if (httpCode(err) === 404) {
        throw new Error(
          `controller.namespace: namespace "${this.namespace}" (where the leader Lease lives) does not exist; create it or set controller.namespace to the controller's own namespace`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** A conditional replace: another writer since our read → 409 → false. */
  private async write(current: Lease, spec: NonNullable<Lease['spec']>): Promise<boolean> {
    try {
      const written = await this.kube.request<Lease>('PUT', leasePath(this.namespace, this.name), {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: {
            name: this.name,
            resourceVersion: current.metadata.resourceVersion,
            labels: current.metadata.labels,
          },
          spec,
        },
      });
      this.observed = {
        record: `${written.spec?.holderIdentity ?? ''}|${written.metadata.resourceVersion ?? ''}`,
        at: Date.now(),
      };
      return spec.holderIdentity === this.identity;
    } catch (err) {
      if (httpCode(err) === 409) return false;
      throw err;
    }
  }
}

export class LeadershipLostError extends Error {
  constructor(why: string) {
    super(`this controller replica is no longer the leader (${why}); the new leader resumes its work`);
    this.name = 'LeadershipLostError';
  }
}
