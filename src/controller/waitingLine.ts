// The BackupRequests waiting to start, oldest first, per project: kept up to date from the
// informer's events, so that a slot decision reads one project's few requests instead of
// filtering and sorting every request the cache holds (in a burst of 1,000 requests that scan,
// made for each reconcile and each freed slot, cost the controller about a second of CPU). Each
// project's line, and the line of all projects, are kept sorted (a request's place is fixed by its
// creation time and name, which never change): the oldest of all are the head of the whole line
// and a place in it is one binary search — no scan and no sort on a decision.
import { terminalStates, type Resource } from './resources.ts';

/** States in which a request no longer waits for a slot. */
const notWaiting = new Set([...terminalStates, 'InProgress']);

const keyOf = (r: Resource): string => `${r.metadata.namespace}/${r.metadata.name}`;

/** Code-point order (RFC 3339 times sort as text; names only need one fixed order). */
const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Oldest first: by creation time, then by name, then by namespace (the order a line is served in). */
function oldestFirst(a: Resource, b: Resource): number {
  return (
    order(a.metadata.creationTimestamp ?? '', b.metadata.creationTimestamp ?? '') ||
    order(a.metadata.name, b.metadata.name) ||
    order(a.metadata.namespace, b.metadata.namespace)
  );
}

/** How many of `line` (sorted) come before `request`: where it is, or would be inserted. */
function before(line: readonly Resource[], request: Resource): number {
  let lo = 0;
  let hi = line.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (oldestFirst(line[mid] as Resource, request) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class WaitingLine {
  /** project → its waiting requests as last seen, oldest first. */
  readonly #byProject = new Map<string, Resource[]>();
  /** Every project's waiting requests, oldest first. */
  readonly #all: Resource[] = [];
  /** namespace/name → the project it is filed under and the request as filed (for its place). */
  readonly #filed = new Map<string, { project: string; request: Resource }>();

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
    const filed = this.#filed.get(key);
    if (filed !== undefined && filed.project === project && oldestFirst(filed.request, request) === 0) {
      // the same place (creation time and name never change): the newer copy replaces the old
      const line = this.#byProject.get(project) ?? [];
      line[before(line, filed.request)] = request;
      this.#all[before(this.#all, filed.request)] = request;
      filed.request = request;
      return;
    }
    if (filed !== undefined) this.gone(request);
    let line = this.#byProject.get(project);
    if (line === undefined) {
      line = [];
      this.#byProject.set(project, line);
    }
    line.splice(before(line, request), 0, request);
    this.#all.splice(before(this.#all, request), 0, request);
    this.#filed.set(key, { project, request });
  }

  /** A request was deleted, finished or started. */
  gone(request: Resource): void {
    const key = keyOf(request);
    const filed = this.#filed.get(key);
    if (filed === undefined) return;
    this.#filed.delete(key);
    this.#all.splice(before(this.#all, filed.request), 1);
    const line = this.#byProject.get(filed.project);
    if (line === undefined) return;
    line.splice(before(line, filed.request), 1);
    if (line.length === 0) this.#byProject.delete(filed.project);
  }

  /** One project's waiting requests (or every project's), oldest first, as namespace/name. */
  keys(project?: string): string[] {
    return (project === undefined ? this.#all : (this.#byProject.get(project) ?? [])).map(keyOf);
  }

  /** 1-based place of a waiting request among every project's (0 when it does not wait). */
  place(key: string): number {
    const filed = this.#filed.get(key);
    return filed === undefined ? 0 : before(this.#all, filed.request) + 1;
  }

  /** The `n` oldest waiting requests of all projects. */
  oldest(n: number): string[] {
    return this.#all.slice(0, Math.max(0, n)).map(keyOf);
  }
}
