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

export interface LifecycleOptions {
  /** How long a finished, archived request stays. */
  ttlMs: number;
  /** How soon archival is tried again while the catalog is unreachable. */
  retryMs?: number;
  log: Logger;
  /** Told how many finished requests wait for archival, and since when the oldest one. */
  onBacklog?: (pending: number, oldestMs: number | undefined) => void;
}

export class Lifecycle {
  private readonly resources: Resources;
  private readonly kind: KindLifecycle;
  private readonly options: LifecycleOptions;
  /** Finished requests whose archival failed, by namespace/name, with when they finished. */
  private readonly backlog = new Map<string, number>();
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
    this.backlog.delete(ref);
    this.report();
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
        if (!this.backlog.has(ref)) this.backlog.set(ref, this.finishedAt(resource) ?? now);
        this.report(now);
        this.options.log.warn(
          `${this.kind.plural} ${ref}: the catalog is unreachable; archival retried in ${(this.options.retryMs ?? 10_000) / 1000} s: ${err instanceof Error ? err.message : String(err)}`,
        );
        return { requeueAfterMs: this.options.retryMs ?? 10_000 };
      }
      this.backlog.delete(ref);
      this.report(now);
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
  isArchived(resource: Resource): boolean {
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

  private report(now = Date.now()): void {
    const times = [...this.backlog.values()];
    this.options.onBacklog?.(times.length, times.length === 0 ? undefined : now - Math.min(...times));
  }
}
