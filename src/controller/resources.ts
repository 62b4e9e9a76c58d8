// The controller's view of the API server: read a resource (from the informer cache when there
// is one), write its status without ever moving a terminal state back (merge patches made
// conditional by the resourceVersion last seen; a conflict re-reads and retries), and record
// Kubernetes Events. The only file that writes lc2-backup's own kinds.
import { httpCode, mergePatch, type KubeClient } from '../kube/client.ts';
import type { Priority } from '../kube/scheduler.ts';
import { customPath } from '../kube/paths.ts';
import { EventRecorder } from './events.ts';
import { OwnWrites, type ObjectMeta } from '../kube/types.ts';

export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { namespace: string };
  spec: unknown;
  status?: Record<string, unknown> & { state?: string };
}

export const terminalStates = new Set(['Succeeded', 'Failed']);

/** Looks a resource up in an informer's cache (undefined: not there, or no cache for the kind). */
export type ResourceCache = (plural: string, namespace: string, name: string) => Resource | undefined;

export class Resources {
  private readonly kube: KubeClient;
  private readonly cache: ResourceCache;
  /**
   * What this process last wrote, until the cache shows it (or something newer): the next
   * conditional write starts from it instead of a GET or a stale cached version.
   */
  private readonly written = new OwnWrites<Resource>();

  /**
   * Writes to one object, one after the other: a progress write still in flight would otherwise
   * make the final status write conflict (and cost a GET and a retry).
   */
  private readonly queues = new Map<string, Promise<unknown>>();

  /** Removes secrets from what is written (status messages, Events); identity by default. */
  private readonly scrub: (text: string) => string;

  private readonly events: EventRecorder;

  constructor(
    kube: KubeClient,
    scrub: (text: string) => string = (text) => text,
    cache: ResourceCache = () => undefined,
  ) {
    this.kube = kube;
    this.scrub = scrub;
    this.cache = cache;
    this.events = new EventRecorder(kube);
  }

  /** A status with its messages (and its conditions' messages) scrubbed of secrets. */
  private scrubbed(status: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = { ...status };
    if (typeof out.message === 'string') out.message = this.scrub(out.message);
    if (Array.isArray(out.conditions)) {
      out.conditions = (out.conditions as Record<string, unknown>[]).map((c) =>
        typeof c.message === 'string' ? { ...c, message: this.scrub(c.message) } : c,
      );
    }
    return out;
  }

  /** Reads the resource from the API server (always a GET). */
  get(plural: string, namespace: string, name: string): Promise<Resource | undefined> {
    return this.kube.get<Resource>(customPath(plural, namespace, name));
  }

  /** The newest version known without a call (the cache or our own last write), if any. */
  private known(plural: string, namespace: string, name: string): Resource | undefined {
    return this.written.newest(`${plural}/${namespace}/${name}`, this.cache(plural, namespace, name));
  }

  private remember(plural: string, written: Resource): Resource {
    return this.written.remember(`${plural}/${written.metadata.namespace}/${written.metadata.name}`, written);
  }

  private serially<T>(key: string, write: () => Promise<T>): Promise<T> {
    const before = this.queues.get(key) ?? Promise.resolve();
    const run = before.then(write, write);
    const settled = run.catch(() => undefined);
    this.queues.set(key, settled);
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    });
    return run;
  }

  /** The resource as last seen (informer cache or our own last write), without a call. */
  peek(plural: string, namespace: string, name: string): Resource | undefined {
    return this.known(plural, namespace, name);
  }

  /** The resource as last seen without a call when possible (informer cache), else a GET. */
  async read(plural: string, namespace: string, name: string): Promise<Resource | undefined> {
    return this.known(plural, namespace, name) ?? (await this.get(plural, namespace, name));
  }

  /** The resources of a kind in a namespace that carry the given labels. */
  async list(plural: string, namespace: string, labels: Record<string, string>): Promise<Resource[]> {
    const labelSelector = Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const list = await this.kube.request<{ items: Resource[] }>('GET', customPath(plural, namespace), {
      query: { labelSelector },
    });
    return list.items;
  }

  /**
   * Applies `next(current)` to the status of a resource that is not yet terminal. Returns the
   * written resource, or undefined when it is gone, terminal, or `next` returns undefined. The
   * first attempt starts from the version last seen (no GET); a conflict reads it fresh.
   * `priority`: high for what answers a new request (src/kube/scheduler.ts), low for progress.
   */
  updateStatus(
    plural: string,
    ref: { namespace: string; name: string },
    next: (current: Resource) => Record<string, unknown> | undefined,
    priority: Priority = 'normal',
  ): Promise<Resource | undefined> {
    return this.serially(`${plural}/${ref.namespace}/${ref.name}`, () =>
      this.writeStatus(plural, ref, next, priority),
    );
  }

  private async writeStatus(
    plural: string,
    ref: { namespace: string; name: string },
    next: (current: Resource) => Record<string, unknown> | undefined,
    priority: Priority,
  ): Promise<Resource | undefined> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const current =
        (attempt === 0 ? this.known(plural, ref.namespace, ref.name) : undefined) ??
        (await this.kube.get<Resource>(customPath(plural, ref.namespace, ref.name), undefined, priority));
      if (!current || terminalStates.has(current.status?.state ?? '')) return undefined;
      const status = next(current);
      if (status === undefined) return undefined;
      try {
        const written = await this.kube.request<Resource>(
          'PATCH',
          customPath(plural, ref.namespace, ref.name, 'status'),
          {
            // resourceVersion makes the merge patch conditional: a concurrent writer → 409
            body: {
              metadata: { resourceVersion: current.metadata.resourceVersion },
              status: this.scrubbed(status),
            },
            contentType: mergePatch,
            priority,
          },
        );
        return this.remember(plural, written);
      } catch (err) {
        if (httpCode(err) === 404) return undefined;
        if (httpCode(err) !== 409) throw err;
      }
    }
    throw new Error(`status of ${plural} ${ref.namespace}/${ref.name}: too many conflicting writers`);
  }

  /**
   * Merge-patches metadata (finalizers, annotations) conditionally on the resourceVersion read;
   * undefined when the resource changed or went away meanwhile (the caller reconciles again).
   */
  patchMetadata(
    plural: string,
    current: Resource,
    metadata: Pick<Resource['metadata'], 'finalizers' | 'annotations'>,
  ): Promise<Resource | undefined> {
    const { namespace, name } = current.metadata;
    return this.serially(`${plural}/${namespace}/${name}`, async () => {
      try {
        const written = await this.kube.request<Resource>(
          'PATCH',
          customPath(plural, current.metadata.namespace, current.metadata.name),
          {
            body: { metadata: { resourceVersion: current.metadata.resourceVersion, ...metadata } },
            contentType: mergePatch,
          },
        );
        return this.remember(plural, written);
      } catch (err) {
        if (httpCode(err) === 409 || httpCode(err) === 404) return undefined;
        throw err;
      }
    });
  }

  /** Deletes exactly the object read (uid and resourceVersion preconditions); false if it changed. */
  async delete(plural: string, current: Resource): Promise<boolean> {
    const { namespace, name } = current.metadata;
    this.written.forget(`${plural}/${namespace}/${name}`);
    try {
      await this.kube.request('DELETE', customPath(plural, namespace, name), {
        body: {
          preconditions: { uid: current.metadata.uid, resourceVersion: current.metadata.resourceVersion },
        },
      });
      return true;
    } catch (err) {
      if (httpCode(err) === 409 || httpCode(err) === 404) return false;
      throw err;
    }
  }

  /**
   * Records an Event on the resource, in the background (see events.ts): returns at once; an
   * Event that cannot be written is not worth failing for.
   */
  event(resource: Resource, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.events.record(resource, type, reason, this.scrub(message));
  }

  /** Waits until the Events recorded so far are posted (before the process exits). */
  flushEvents(): Promise<void> {
    return this.events.flush();
  }
}
