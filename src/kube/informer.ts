// List+watch cache of one kind (optionally one namespace and label selector), as client-go's
// reflector: list (paged), then watch from the list's resourceVersion with bookmarks; a watch
// that ends is resumed from the last resourceVersion seen, one that fails with 410 Gone (the
// version is too old) re-lists, and any other failure is retried after a pause. Handlers see
// every add, update and delete in order; `get`/`list` answer from the cache without a call.
import { KubeError, type KubeClient, type Query } from './client.ts';

/** What the informer needs of an object: its name, namespace and version. */
export interface KubeObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
}

/**
 * Drops `metadata.managedFields` (server-side apply's bookkeeping, often the larger half of an
 * object): nothing here reads them, and a cache of thousands of objects should not keep them.
 * As client-go's informers do with their strip-managed-fields transform.
 */
export function withoutManagedFields<T extends KubeObject>(object: T): T {
  const metadata = object.metadata as { managedFields?: unknown };
  if (metadata.managedFields !== undefined) delete metadata.managedFields;
  return object;
}

export interface InformerHandlers<T> {
  onAdd?: (object: T) => void;
  onUpdate?: (object: T, previous: T) => void;
  onDelete?: (object: T) => void;
  /** A failed list or watch (it is retried); for logs. */
  onError?: (err: unknown) => void;
}

export interface InformerOptions {
  labelSelector?: string;
  /** How long the server keeps one watch open before it is resumed (default 5–10 min). */
  watchTimeoutSeconds?: number;
}

const pageSize = 500;
const retryMs = 1000;

const keyOf = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class Informer<T extends KubeObject> {
  readonly #client: KubeClient;
  readonly #path: string;
  readonly #labelSelector: string | undefined;
  readonly #watchTimeoutSeconds: number | undefined;
  readonly #handlers: InformerHandlers<T>;
  readonly #cache = new Map<string, T>();
  #resourceVersion = '';
  #stop = new AbortController();
  #loop: Promise<void> | undefined;

  /** `path`: the collection, e.g. `/apis/coordination.k8s.io/v1/namespaces/ns/leases`. */
  constructor(
    client: KubeClient,
    path: string,
    handlers: InformerHandlers<T>,
    options: InformerOptions = {},
  ) {
    this.#client = client;
    this.#path = path;
    this.#handlers = handlers;
    this.#labelSelector = options.labelSelector;
    this.#watchTimeoutSeconds = options.watchTimeoutSeconds;
  }

  get(namespace: string, name: string): T | undefined {
    return this.#cache.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  /** Lists once (resolves when the cache is filled), then keeps watching until `stop`. */
  async start(): Promise<void> {
    this.#stop = new AbortController();
    await this.relist();
    this.#loop = this.run();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  private query(): Query {
    return this.#labelSelector === undefined ? {} : { labelSelector: this.#labelSelector };
  }

  private async relist(): Promise<void> {
    const seen = new Map<string, T>();
    let next: string | undefined;
    let version = '';
    do {
      const page = await this.#client.request<{
        items: T[];
        metadata: { resourceVersion?: string; continue?: string };
      }>('GET', this.#path, {
        query: { ...this.query(), limit: pageSize, continue: next },
        signal: this.#stop.signal,
      });
      for (const item of page.items) seen.set(keyOf(item), item);
      version = page.metadata.resourceVersion ?? version;
      next = page.metadata.continue === '' ? undefined : page.metadata.continue;
    } while (next !== undefined);
    // items of a list carry neither kind nor apiVersion; what changed since the cache was filled
    // is told to the handlers as a watch would have told it
    for (const [key, old] of this.#cache) {
      if (!seen.has(key)) {
        this.#cache.delete(key);
        this.#handlers.onDelete?.(old);
      }
    }
    for (const [key, item] of seen) this.apply(key, item);
    this.#resourceVersion = version;
  }

  private apply(key: string, item: T): void {
    withoutManagedFields(item);
    const old = this.#cache.get(key);
    this.#cache.set(key, item);
    if (old === undefined) this.#handlers.onAdd?.(item);
    else if (old.metadata.resourceVersion !== item.metadata.resourceVersion)
      this.#handlers.onUpdate?.(item, old);
  }

  private onEvent(event: { type: string; object: T }): void {
    const { object } = event;
    if (event.type === 'ERROR') {
      const status = object as unknown as { code?: number; message?: string; reason?: string };
      throw new KubeError(
        `watch ${this.#path}: ${status.message ?? 'error'}`,
        status.code ?? 500,
        status.reason,
      );
    }
    if (object.metadata.resourceVersion !== undefined)
      this.#resourceVersion = object.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const key = keyOf(object);
    if (event.type === 'DELETED') {
      this.#cache.delete(key);
      this.#handlers.onDelete?.(object);
      return;
    }
    this.apply(key, object);
  }

  private async run(): Promise<void> {
    const { signal } = this.#stop;
    const stopped = (): boolean => signal.aborted;
    while (!stopped()) {
      try {
        await this.#client.watch<T>(
          this.#path,
          {
            ...this.query(),
            resourceVersion: this.#resourceVersion,
            allowWatchBookmarks: true,
            // the server ends a watch after this; it is resumed from the last version seen
            timeoutSeconds: this.#watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300),
          },
          (event) => {
            this.onEvent(event);
          },
          signal,
        );
      } catch (err) {
        if (stopped()) return;
        const gone = err instanceof KubeError && err.code === 410;
        if (!gone) this.#handlers.onError?.(err);
        await new Promise((resolve) => setTimeout(resolve, gone ? 0 : retryMs));
        await this.relist().catch((relistErr: unknown) => {
          if (!stopped()) this.#handlers.onError?.(relistErr);
        });
      }
    }
  }
}
