// What happens to a request around its run: a finalizer before work starts (so a deletion
// waits until the request is recorded, and for deletionPolicy: Delete until its backup is
// removed); archival to the catalog once it finished, retried while the catalog is down (the
// run itself never waits for the catalog); and removal from the API server once archived and
// its time-to-live has passed, so etcd holds active work and the catalog holds history.
//
// Which finished requests are archived is kept in memory, not written to the request: archival
// is idempotent (a row already final is left as it is, at the cost of one catalog read), so a
// controller that restarts simply archives the finished requests it lists again, and a request
// costs no API write for it.
import { isCatalogOutage } from '../engine/history.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { JobExecutor } from './jobExecutor.ts';
import { terminalStates, type Resource, type Resources } from './resources.ts';

export const finalizer = 'backup.liferay.cloud/finalizer';

export type Requeue = { requeueAfterMs: number } | undefined;

/** The kind-specific parts. */
export interface KindLifecycle {
  plural: string;
  /** Records the request's outcome in the catalog (idempotent); throws while it is unreachable. */
  archive(resource: Resource): Promise<void>;
  /** Runs once when the request is deleted, after archival (deletionPolicy: Delete). */
  onDelete?(resource: Resource): Promise<void>;
}

/**
 * The finished requests of every kind whose archival waits for the catalog, by
 * plural/namespace/name with when each finished; every change is reported as one figure.
 */
export class ArchivalBacklog {
  private readonly entries = new Map<string, number>();
  private readonly onChange: ((pending: number, oldestMs: number | undefined) => void) | undefined;

  /** `onChange`: told how many wait, and for how long the oldest has. */
  constructor(onChange?: (pending: number, oldestMs: number | undefined) => void) {
    this.onChange = onChange;
  }

  add(key: string, finishedAt: number, now: number): void {
    if (!this.entries.has(key)) this.entries.set(key, finishedAt);
    this.report(now);
  }

  delete(key: string, now: number): void {
    this.entries.delete(key);
    this.report(now);
  }

  private report(now: number): void {
    const times = [...this.entries.values()];
    this.onChange?.(times.length, times.length === 0 ? undefined : now - Math.min(...times));
  }
}

/** What both request kinds' reconcilers take. */
export interface RequestReconcilerOptions {
  /** How often a run's progress is written at most (default 2 s). */
  progressIntervalMs?: number;
  /** How long a finished, archived request stays in the API server (default 24 h). */
  ttlMs?: number;
  /** How soon archival is retried while the catalog is unreachable (default 10 s). */
  retryMs?: number;
  /** Shared by the kinds; default: one of its own, reported nowhere. */
  backlog?: ArchivalBacklog;
  /** `executor: job`: data moves in worker Jobs; default: in this process. */
  executor?: JobExecutor;
  metrics?: Metrics;
}

export interface LifecycleOptions {
  /** How long a finished, archived request stays. */
  ttlMs: number;
  /** How soon archival is tried again while the catalog is unreachable. */
  retryMs?: number | undefined;
  log: Logger;
  backlog: ArchivalBacklog;
}

/** The lifecycle of a request kind with a reconciler's options. */
export function requestLifecycle(
  resources: Resources,
  kind: KindLifecycle,
  options: RequestReconcilerOptions,
  log: Logger,
): Lifecycle {
  return new Lifecycle(resources, kind, {
    ttlMs: options.ttlMs ?? 24 * 3_600_000,
    retryMs: options.retryMs,
    log,
    backlog: options.backlog ?? new ArchivalBacklog(),
  });
}

export class Lifecycle {
  private readonly resources: Resources;
  private readonly kind: KindLifecycle;
  private readonly options: LifecycleOptions;
  /** The uids of the finished requests this process archived (until they are removed). */
  private readonly archived = new Set<string>();

  constructor(resources: Resources, kind: KindLifecycle, options: LifecycleOptions) {
    this.resources = resources;
    this.kind = kind;
    this.options = options;
  }

  /**
   * Adds the finalizer before any work (a conflicting writer: read again and retry); false when
   * the resource is gone or keeps changing.
   */
  async ensureFinalizer(resource: Resource): Promise<boolean> {
    let current: Resource | undefined = resource;
    for (let attempt = 0; attempt < 3 && current !== undefined; attempt++) {
      const finalizers: string[] = current.metadata.finalizers ?? [];
      if (finalizers.includes(finalizer)) return true;
      const written = await this.resources.patchMetadata(this.kind.plural, current, {
        finalizers: [...finalizers, finalizer],
      });
      if (written !== undefined) return true;
      const { namespace, name } = current.metadata;
      current = await this.resources.get(this.kind.plural, namespace, name);
    }
    return false;
  }

  /** A request being deleted: archive it, run the kind's deletion, then let it go. */
  async finalize(resource: Resource): Promise<Requeue> {
    const finalizers = resource.metadata.finalizers ?? [];
    if (!finalizers.includes(finalizer)) return undefined;
    const ref = `${resource.metadata.namespace}/${resource.metadata.name}`;
    try {
      if (!this.isArchived(resource)) await this.kind.archive(resource);
      await this.kind.onDelete?.(resource);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.resources.event(resource, 'Warning', 'DeletionBlocked', `deletion waits: ${message}`);
      if (!isCatalogOutage(err)) throw err;
      this.options.log.warn(`${this.kind.plural} ${ref}: deletion waits for the catalog: ${message}`);
      return { requeueAfterMs: this.options.retryMs ?? 10_000 };
    }
    this.options.backlog.delete(`${this.kind.plural}/${ref}`, Date.now());
    const left = finalizers.filter((f) => f !== finalizer);
    if (!(await this.resources.patchMetadata(this.kind.plural, resource, { finalizers: left })))
      return { requeueAfterMs: 0 };
    this.forget(resource);
    this.options.log.info(`${this.kind.plural} ${ref} deleted`);
    return undefined;
  }

  /** A finished request: archive it, then remove it once its time-to-live has passed. */
  async finished(resource: Resource, now = Date.now()): Promise<Requeue> {
    const ref = `${resource.metadata.namespace}/${resource.metadata.name}`;
    if (!this.isArchived(resource)) {
      try {
        await this.kind.archive(resource);
      } catch (err) {
        if (!isCatalogOutage(err)) throw err;
        this.options.backlog.add(`${this.kind.plural}/${ref}`, this.finishedAt(resource) ?? now, now);
        this.options.log.warn(
          `${this.kind.plural} ${ref}: the catalog is unreachable; archival retried in ${(this.options.retryMs ?? 10_000) / 1000} s: ${err instanceof Error ? err.message : String(err)}`,
        );
        return { requeueAfterMs: this.options.retryMs ?? 10_000 };
      }
      this.options.backlog.delete(`${this.kind.plural}/${ref}`, now);
      this.markArchived(resource);
    }
    const expires = (this.finishedAt(resource) ?? now) + this.options.ttlMs;
    if (now < expires) return { requeueAfterMs: expires - now };
    return (await this.expire(resource)) ? undefined : { requeueAfterMs: 0 };
  }

  /**
   * Removes an archived, finished request from the API server without running its deletion
   * (housekeeping keeps the stored backup whatever the deletionPolicy). False when it changed.
   */
  async expire(resource: Resource): Promise<boolean> {
    if (!this.isArchived(resource) || !terminalStates.has(resource.status?.state ?? '')) return false;
    const finalizers = resource.metadata.finalizers ?? [];
    let current: Resource | undefined = resource;
    if (finalizers.includes(finalizer)) {
      const left = finalizers.filter((f) => f !== finalizer);
      if (!(await this.resources.patchMetadata(this.kind.plural, resource, { finalizers: left })))
        return false;
      current = await this.resources.read(
        this.kind.plural,
        resource.metadata.namespace,
        resource.metadata.name,
      );
    }
    if (current === undefined) {
      this.forget(resource);
      return true;
    }
    const deleted = await this.resources.delete(this.kind.plural, current);
    if (deleted) this.forget(resource);
    if (deleted)
      this.options.log.info(
        `${this.kind.plural} ${current.metadata.namespace}/${current.metadata.name} removed: archived in the catalog and past its time-to-live`,
      );
    return deleted;
  }

  /** Whether this process archived the request (a restarted one archives it again). */
  private isArchived(resource: Resource): boolean {
    return resource.metadata.uid !== undefined && this.archived.has(resource.metadata.uid);
  }

  private markArchived(resource: Resource): void {
    if (resource.metadata.uid !== undefined) this.archived.add(resource.metadata.uid);
  }

  private forget(resource: Resource): void {
    if (resource.metadata.uid !== undefined) this.archived.delete(resource.metadata.uid);
  }

  private finishedAt(resource: Resource): number | undefined {
    const completed = resource.status?.completionTime;
    const at = typeof completed === 'string' ? Date.parse(completed) : Number.NaN;
    return Number.isNaN(at) ? undefined : at;
  }
}
