// The controller: one list+watch informer per kind feeds a keyed work queue; each key
// (`<plural>/<namespace>/<name>`) is reconciled by its kind's reconciler, which reads the
// object from the informer's cache. Informers resume their watch from the last resourceVersion
// and re-list on 410 Gone (src/kube/informer.ts). A fourth informer watches the slot Leases,
// so a slot decision costs no call.
import { durationMs } from '../config/config.ts';
import { group, version } from '../../api/v1alpha1/common.ts';
import { httpCode, type KubeClient } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import { customPath, leasePath } from '../kube/paths.ts';
import type { Lease } from '../kube/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { EngineContext } from '../engine/context.ts';
import { BackupReconciler, type SlotPolicy } from './backupReconciler.ts';
import { JobExecutor } from './jobExecutor.ts';
import { ArchivalBacklog } from './lifecycle.ts';
import { WorkQueue } from './queue.ts';
import { WaitingLine } from './waitingLine.ts';
import { Resources, terminalStates, type Resource } from './resources.ts';
import { GlobalLimit, poolLabel, ProjectSlots } from './slots.ts';
import { RestoreReconciler } from './restoreReconciler.ts';
import { ScheduleReconciler } from './scheduleReconciler.ts';

export interface ControllerOptions {
  kube: KubeClient;
  engine: EngineContext;
  /** Requests in flight at once across all projects. */
  concurrency?: number;
  progressIntervalMs?: number;
  /** How often a worker Job's state is read (executor: job); default 1 s. */
  jobPollMs?: number;
  /** How soon archival is retried while the catalog is unreachable (default 10 s). */
  archiveRetryMs?: number;
  /** Where the controller reports (prom-client metrics). */
  metrics?: Metrics;
  /** Removes secrets from status messages and Events. */
  scrub?: (text: string) => string;
  /** Told how many finished requests wait for the catalog, and for how long the oldest. */
  onBacklog?: (pending: number, oldestMs: number | undefined) => void;
}

const kinds = ['backuprequests', 'restorerequests', 'backupschedules'] as const;
type Reconciler = (key: string) => Promise<{ requeueAfterMs: number } | undefined>;

export class Controller {
  private readonly queue: WorkQueue;
  private readonly informers = new Map<string, Informer<Resource>>();
  private readonly leases: Informer<Lease>;
  /** The global limit of the BackupRequests' slots (told of the changes that move its count). */
  private global: GlobalLimit | undefined;
  /** BackupRequests waiting to start, per project, oldest first (from the informer's events). */
  private readonly waiting = new WaitingLine();
  private readonly options: ControllerOptions;
  /** Waits for the backups running beside the queue, then for their Events. */
  private readonly settleRuns: () => Promise<void>;
  /** Told of a deleted BackupRequest (one deleted while it waited is not reconciled again). */
  private readonly backupGone: (key: string) => void;
  private stopped = false;
  private listed = false;

  constructor(options: ControllerOptions) {
    this.options = options;
    const { kube } = options;
    const resources = new Resources(kube, options.scrub, (plural, namespace, name) =>
      this.informers.get(plural)?.get(namespace, name),
    );
    this.leases = new Informer<Lease>(
      kube,
      leasePath(options.engine.config.controller.namespace),
      {
        // a slot Lease changed: the global limit looks at its holder again
        onAdd: (lease) => this.global?.leaseChanged(lease.metadata.name),
        onUpdate: (lease) => this.global?.leaseChanged(lease.metadata.name),
        onDelete: (lease) => this.global?.leaseChanged(lease.metadata.name),
        onError: (err) => {
          this.watchFailed('leases', err);
        },
      },
      { labelSelector: poolLabel },
    );
    const { controller } = options.engine.config;
    const { metrics } = options;
    const settings = {
      progressIntervalMs: options.progressIntervalMs,
      ttlMs: durationMs(controller.finishedTTL),
      ...(options.archiveRetryMs === undefined ? {} : { retryMs: options.archiveRetryMs }),
      // one backlog of both kinds' archival
      backlog: new ArchivalBacklog((pending, oldestMs) => {
        options.onBacklog?.(pending, oldestMs);
        metrics?.setCatalogArchival({
          pending,
          ...(oldestMs === undefined ? {} : { oldestFinishedAt: new Date(Date.now() - oldestMs) }),
        });
      }),
    };
    const slots = this.slotPolicy(resources);
    const executor =
      controller.executor === 'job'
        ? { executor: new JobExecutor(kube, options.engine, options.jobPollMs) }
        : {};
    const observed = metrics ? { metrics } : {};
    const backups = new BackupReconciler(resources, options.engine, {
      ...settings,
      ...executor,
      ...observed,
      slots,
      // a run that ended is reconciled again (archival; or a retry, after a pause, if it failed)
      onRunEnd: (key, err) => {
        if (err !== undefined) {
          const why = err instanceof Error ? err.message : JSON.stringify(err);
          options.engine.log.warn(`backuprequests/${key}: the run stopped with an error; retrying: ${why}`);
        }
        this.queue.add(`backuprequests/${key}`, err === undefined ? 0 : 2000);
      },
    });
    this.backupGone = (key) => {
      backups.gone(key);
    };
    this.settleRuns = async () => {
      await backups.settle();
      await resources.flushEvents();
    };
    const restores = new RestoreReconciler(resources, options.engine, {
      ...settings,
      ...executor,
      ...observed,
    });
    const schedules = new ScheduleReconciler(resources, kube, options.engine, (request) =>
      backups.lifecycle.expire(request),
    );
    const reconcilers: Record<string, Reconciler> = {
      backuprequests: (key) => backups.reconcile(key),
      restorerequests: (key) => restores.reconcile(key),
      backupschedules: (key) => schedules.reconcile(key),
    };
    this.queue = new WorkQueue(
      (key) => {
        const slash = key.indexOf('/');
        const reconcile = reconcilers[key.slice(0, slash)];
        return reconcile ? reconcile(key.slice(slash + 1)) : Promise.resolve(undefined);
      },
      {
        concurrency: options.concurrency ?? 4,
        onError: (key, err, delay) => {
          options.engine.log.warn(`reconcile ${key} failed; retrying in ${delay} ms: ${String(err)}`);
        },
      },
    );
    for (const plural of kinds) this.informers.set(plural, this.watch(plural));
  }

  private watchFailed(what: string, err: unknown): void {
    if (!this.stopped) this.options.engine.log.warn(`watch of ${what} failed; resuming it: ${String(err)}`);
  }

  /** Per-project slots in Leases; the waiting line is kept from the BackupRequest informer's events. */
  private slotPolicy(resources: Resources): SlotPolicy {
    const { config } = this.options.engine;
    const limitFor = (project: string): number =>
      config.projects[project]?.concurrency ?? config.controller.projectConcurrency;
    // a holder (namespace/name) still runs while its request exists and is not finished
    const runs = (held: Resource | undefined): boolean =>
      held !== undefined && !terminalStates.has(held.status?.state ?? '');
    const request = (holder: string): [string, string, string] => {
      const [namespace = '', name = ''] = holder.split('/');
      return ['backuprequests', namespace, name];
    };
    // the informer's cache (or this process's own newer write: a run that just finished frees its
    // slot) answers without a request; a holder it does not know (yet) is read
    const holderActive = async (holder: string): Promise<boolean> =>
      runs(await resources.read(...request(holder)));
    // the same without a call, for the global count: the requests are listed before any is
    // reconciled, and a slot is only taken for a request this process has seen, so a holder the
    // cache does not know is gone
    const activeNow = (holder: string): boolean => runs(resources.peek(...request(holder)));
    const manager = new ProjectSlots(this.options.kube, {
      namespace: config.controller.namespace,
      holderActive,
      cached: (name: string) => this.leases.get(config.controller.namespace, name),
      listed: () => this.leases.list(),
    });
    this.global = new GlobalLimit(manager, config.controller.globalConcurrency, activeNow);
    return {
      manager,
      global: this.global,
      limitFor,
      waiting: (project) => this.waiting.keys(project),
      placeInLine: (key) => this.waiting.place(key),
      // a freed slot wakes the requests next in line at once (the periodic recheck is slow)
      wake: (project) => {
        const next = [...this.waiting.keys(project).slice(0, limitFor(project)), ...this.waiting.oldest(4)];
        for (const key of new Set(next)) this.queue.add(`backuprequests/${key}`);
      },
    };
  }

  private watch(plural: string): Informer<Resource> {
    // the waiting line of BackupRequests is kept from their events (src/controller/waitingLine.ts)
    // and the global limit looks again at the slots a changed request holds
    const backups = plural === 'backuprequests';
    const line = backups ? this.waiting : undefined;
    const changed = (obj: Resource): void => {
      line?.seen(obj);
      const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
      if (backups) this.global?.requestChanged(key);
      this.queue.add(`${plural}/${key}`);
    };
    return new Informer<Resource>(this.options.kube, customPath(plural), {
      onAdd: changed,
      onUpdate: changed,
      onDelete: (obj) => {
        line?.gone(obj);
        if (!backups) return;
        const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
        this.global?.requestChanged(key);
        this.backupGone(key);
      },
      onError: (err) => {
        this.watchFailed(plural, err);
      },
    });
  }

  /** True once every informer has listed its kind (readiness). */
  get synced(): boolean {
    return this.listed;
  }

  async start(): Promise<void> {
    // the slot Leases first: a request reconciled at once must see the slots already taken
    await this.leases.start();
    await Promise.all(
      [...this.informers.entries()].map(([plural, informer]) =>
        informer.start().catch((err: unknown) => {
          if (httpCode(err) !== 404) throw err;
          throw new Error(
            `the API server does not serve ${plural} (${group}/${version}): install the CRDs first (kubectl apply --server-side -f deploy/crds/)`,
            { cause: err },
          );
        }),
      ),
    );
    this.listed = true;
    await this.removeOldGlobalPool();
    this.options.engine.log.info(
      'controller started: watching backuprequests, restorerequests and backupschedules',
    );
  }

  /**
   * Versions before 2026-11-27 held the global limit in a second pool of Leases
   * (`lc2-limit-global-<i>`); it is counted over the project slots now, so those are removed.
   */
  private async removeOldGlobalPool(): Promise<void> {
    const { namespace } = this.options.engine.config.controller;
    const old = this.leases.list().filter((lease) => lease.metadata.labels?.[poolLabel] === 'lc2-limit');
    if (old.length === 0) return;
    await Promise.all(
      old.map((lease) =>
        this.options.kube.request('DELETE', leasePath(namespace, lease.metadata.name)).catch(() => undefined),
      ),
    );
    this.options.engine.log.info(
      `removed ${old.length} Lease(s) of the old global pool (the global limit is counted over the project slots now)`,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    await this.queue.stop();
    await this.settleRuns();
    await this.leases.stop();
  }
}
