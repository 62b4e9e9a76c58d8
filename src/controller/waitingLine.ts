// The BackupRequests waiting to start, oldest first, per project: kept up to date from the
// informer's events, so that a slot decision reads one project's few requests instead of
// filtering and sorting every request the cache holds (in a burst of 1,000 requests that scan,
// made for each reconcile and each freed slot, cost the controller about a second of CPU).
import { terminalStates, type Resource } from './resources.ts';

/** States in which a request no longer waits for a slot. */
const notWaiting = new Set([...terminalStates, 'InProgress']);

const keyOf = (r: Resource): string => `${r.metadata.namespace}/${r.metadata.name}`;

/** Oldest first: by creation time, then by name (the order a line is served in). */
function oldestFirst(a: Resource, b: Resource): number {
  return (
    order(a.metadata.creationTimestamp ?? '', b.metadata.creationTimestamp ?? '') ||
    order(a.metadata.name, b.metadata.name)
  );
}

/** Code-point order (RFC 3339 times sort as text; names only need one fixed order). */
const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export class WaitingLine {
  /** project → (namespace/name → the request as last seen). */
  readonly #byProject = new Map<string, Map<string, Resource>>();
  /** namespace/name → the project it is filed under. */
  readonly #projectOf = new Map<string, string>();

  /** A request was added or changed: it joins, stays in or leaves its project's line. */
  seen(request: Resource): void {
    const waits =
      request.metadata.deletionTimestamp === undefined && !notWaiting.has(request.status?.state ?? '');
    if (!waits) {
      this.gone(request);
      return;
    }
    const key = keyOf(request);
    const spec = request.spec as { projectId?: unknown } | undefined;
    const project = typeof spec?.projectId === 'string' ? spec.projectId : '';
    const before = this.#projectOf.get(key);
    if (before !== undefined && before !== project) this.gone(request);
    let line = this.#byProject.get(project);
    if (line === undefined) {
      line = new Map();
      this.#byProject.set(project, line);
    }
    line.set(key, request);
    this.#projectOf.set(key, project);
  }

  /** A request was deleted, finished or started. */
  gone(request: Resource): void {
    const key = keyOf(request);
    const project = this.#projectOf.get(key);
    if (project === undefined) return;
    this.#projectOf.delete(key);
    const line = this.#byProject.get(project);
    line?.delete(key);
    if (line?.size === 0) this.#byProject.delete(project);
  }

  /** One project's waiting requests (or every project's), oldest first, as namespace/name. */
  keys(project?: string): string[] {
    const requests =
      project === undefined
        ? [...this.#byProject.values()].flatMap((line) => [...line.values()])
        : [...(this.#byProject.get(project)?.values() ?? [])];
    return requests.sort(oldestFirst).map(keyOf);
  }

  /** The `n` oldest waiting requests of all projects (one pass; no sort of the whole line). */
  oldest(n: number): string[] {
    const best: Resource[] = [];
    if (n < 1) return [];
    for (const line of this.#byProject.values()) {
      for (const request of line.values()) {
        if (best.length === n && oldestFirst(request, best[n - 1] as Resource) >= 0) continue;
        best.push(request);
        best.sort(oldestFirst);
        if (best.length > n) best.pop();
      }
    }
    return best.map(keyOf);
  }
}
