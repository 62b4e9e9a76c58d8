// The product's Prometheus metrics, in one registry per process (`createMetrics`), behind a
// typed API the controller calls (`metrics.requestFinished({...})`). Names follow Prometheus
// conventions (`lc2_backup_` prefix, base units, `_total` counters, `_seconds`, `_bytes`).
// Label values are bounded: kind, state and component are closed sets; project and reason are
// capped (a value past the cap, or one that is not a plain identifier, is counted as "other"),
// so a flood of mistyped project ids cannot explode the series count. Backup ids and request
// names are never labels.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const requestKinds = ['backup', 'restore'] as const;
export type RequestKind = (typeof requestKinds)[number];
export const terminalStates = ['Succeeded', 'Failed'] as const;
export type TerminalState = (typeof terminalStates)[number];
export const durationComponents = ['database', 'documentLibrary', 'manifest', 'total'] as const;
export type DurationComponent = (typeof durationComponents)[number];
export const sizeComponents = ['database', 'documentLibrary', 'manifest', 'total'] as const;
export type SizeComponent = (typeof sizeComponents)[number];

/** The label value a capped or malformed project/reason is counted under. */
export const otherLabel = 'other';

/** Seconds: from a quick manifest write to a multi-hour document-library copy. */
export const durationBuckets = [
  1,
  5,
  15,
  30,
  60,
  120,
  300,
  600,
  1200,
  1800,
  3600,
  2 * 3600,
  4 * 3600,
  8 * 3600,
  12 * 3600,
  24 * 3600,
];

/** Every product metric name (without histogram suffixes); the dashboard and alert tests use it. */
export const metricNames = {
  requests: 'lc2_backup_requests_total',
  duration: 'lc2_backup_duration_seconds',
  queueDepth: 'lc2_backup_semaphore_queue_depth',
  size: 'lc2_backup_size_bytes',
  bytesCopied: 'lc2_backup_bytes_copied_total',
  objectsCopied: 'lc2_backup_objects_copied_total',
  retries: 'lc2_backup_retries_total',
  errors: 'lc2_backup_errors_total',
  lastSuccess: 'lc2_backup_last_success_timestamp_seconds',
  archivalPending: 'lc2_backup_catalog_archival_pending',
  archivalLag: 'lc2_backup_catalog_archival_lag_seconds',
  leader: 'lc2_backup_leader',
} as const;

export interface MetricsOptions {
  /**
   * The configured projects: always accepted as label values. Other project ids are accepted
   * until `maxProjects` distinct values have been seen, then counted as "other".
   */
  projects?: Iterable<string>;
  /** Distinct project label values at most (default 200). */
  maxProjects?: number;
  /** Distinct reason label values at most (default 50). */
  maxReasons?: number;
  /** prom-client's process and Node.js metrics (default true). */
  defaultMetrics?: boolean;
}

export interface RequestFinished {
  kind: RequestKind;
  state: TerminalState;
  project: string;
  /** Why it failed (the status reason: BackupFailed, Forbidden…); counted in errors_total. */
  reason?: string;
  /** When it finished (default now); a succeeded backup sets the project's last-success time. */
  at?: Date;
}

export interface CatalogArchival {
  /** Finished requests whose history is not yet in the catalog. */
  pending: number;
  /** When the oldest of them finished; omitted when none is pending. */
  oldestFinishedAt?: Date;
  now?: Date;
}

export interface Metrics {
  readonly registry: Registry;
  /** A request reached Succeeded or Failed (call once per request). */
  requestFinished(event: RequestFinished): void;
  /** How long one component (or the whole request: "total") took. */
  observeDuration(component: DurationComponent, seconds: number): void;
  /**
   * The last successful backup of a project, e.g. read from the catalog at start-up (a restarted
   * controller otherwise knows none until the next success, and NoSuccessfulBackup26h is blind).
   */
  setLastSuccess(project: string, at: Date): void;
  /** Requests of a project waiting for a concurrency slot right now. */
  setQueueDepth(project: string, depth: number): void;
  /** Size of the last successful backup of a project, per component. */
  setBackupSize(project: string, component: SizeComponent, bytes: number): void;
  /** Data copied since the last call (deltas, not totals). */
  addCopied(project: string, copied: { bytes?: number; objects?: number }): void;
  /** One retry of an operation, by reason (Throttled, Timeout, ConnectionReset…). */
  retried(reason: string): void;
  setCatalogArchival(archival: CatalogArchival): void;
  setLeader(leader: boolean): void;
  /** The exposition text and its content type, for /metrics. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

const identifier = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;

/** Admits label values up to a cap; past it, or when malformed, returns "other". */
export class BoundedLabel {
  readonly #seen = new Set<string>();
  readonly #max: number;

  constructor(max: number, always: Iterable<string> = []) {
    this.#max = max;
    for (const value of always) this.#seen.add(value);
  }

  value(raw: string): string {
    if (this.#seen.has(raw)) return raw;
    if (!identifier.test(raw) || this.#seen.size >= this.#max) return otherLabel;
    this.#seen.add(raw);
    return raw;
  }
}

function nonNegative(what: string, value: number): number {
  if (!Number.isFinite(value) || value < 0)
    throw new RangeError(`${what} must be a finite number ≥ 0, got ${value}`);
  return value;
}

function oneOf<T extends string>(what: string, allowed: readonly T[], value: T): T {
  if (!allowed.includes(value))
    throw new RangeError(`${what} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value;
}

function build(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: metricNames.requests,
      help: 'Backup and restore requests that reached a terminal state, by kind, state and project.',
      labelNames: ['kind', 'state', 'project'] as const,
      registers,
    }),
    duration: new Histogram({
      name: metricNames.duration,
      help: 'Time a backup component (database, documentLibrary, manifest) or a whole request (total) took.',
      labelNames: ['component'] as const,
      buckets: durationBuckets,
      registers,
    }),
    queueDepth: new Gauge({
      name: metricNames.queueDepth,
      help: "Requests waiting for one of their project's concurrency slots.",
      labelNames: ['project'] as const,
      registers,
    }),
    size: new Gauge({
      name: metricNames.size,
      help: 'Size in bytes of the last successful backup of a project, by component.',
      labelNames: ['project', 'component'] as const,
      registers,
    }),
    bytesCopied: new Counter({
      name: metricNames.bytesCopied,
      help: 'Bytes copied by backups and restores, by project.',
      labelNames: ['project'] as const,
      registers,
    }),
    objectsCopied: new Counter({
      name: metricNames.objectsCopied,
      help: 'Objects copied by backups and restores, by project.',
      labelNames: ['project'] as const,
      registers,
    }),
    retries: new Counter({
      name: metricNames.retries,
      help: 'Retried operations (store or API calls), by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    errors: new Counter({
      name: metricNames.errors,
      help: 'Failed requests, by failure reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    lastSuccess: new Gauge({
      name: metricNames.lastSuccess,
      help: 'Unix time of the last successful backup of a project.',
      labelNames: ['project'] as const,
      registers,
    }),
    archivalPending: new Gauge({
      name: metricNames.archivalPending,
      help: 'Finished requests whose history is not yet recorded in the catalog.',
      registers,
    }),
    archivalLag: new Gauge({
      name: metricNames.archivalLag,
      help: 'Age in seconds of the oldest finished request not yet recorded in the catalog (0 when none).',
      registers,
    }),
    leader: new Gauge({
      name: metricNames.leader,
      help: '1 while this controller replica holds the leader lease, else 0.',
      registers,
    }),
  };
}

/** A fresh registry with the product's metrics (and, by default, process metrics). */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const m = build(registry);
  const projects = new BoundedLabel(options.maxProjects ?? 200, options.projects);
  const reasons = new BoundedLabel(options.maxReasons ?? 50);
  m.leader.set(0);
  m.archivalPending.set(0);
  m.archivalLag.set(0);
  // every configured project's request counters exist from the start at 0, so the first
  // failure after a restart is an increase (the BackupFailed alert) rather than a new series
  for (const project of options.projects ?? []) {
    for (const kind of requestKinds) {
      for (const state of terminalStates)
        m.requests.inc({ kind, state, project: projects.value(project) }, 0);
    }
  }
  return {
    registry,
    requestFinished(event) {
      const kind = oneOf('kind', requestKinds, event.kind);
      const state = oneOf('state', terminalStates, event.state);
      const project = projects.value(event.project);
      m.requests.inc({ kind, state, project });
      if (state === 'Failed') m.errors.inc({ reason: reasons.value(event.reason ?? 'Unknown') });
      if (state === 'Succeeded' && kind === 'backup') {
        m.lastSuccess.set({ project }, (event.at ?? new Date()).getTime() / 1000);
      }
    },
    observeDuration(component, seconds) {
      m.duration.observe(
        { component: oneOf('component', durationComponents, component) },
        nonNegative('seconds', seconds),
      );
    },
    setQueueDepth(project, depth) {
      m.queueDepth.set({ project: projects.value(project) }, nonNegative('queue depth', depth));
    },
    setBackupSize(project, component, bytes) {
      m.size.set(
        { project: projects.value(project), component: oneOf('component', sizeComponents, component) },
        nonNegative('bytes', bytes),
      );
    },
    addCopied(project, copied) {
      const label = { project: projects.value(project) };
      if (copied.bytes !== undefined) m.bytesCopied.inc(label, nonNegative('bytes', copied.bytes));
      if (copied.objects !== undefined) m.objectsCopied.inc(label, nonNegative('objects', copied.objects));
    },
    retried(reason) {
      m.retries.inc({ reason: reasons.value(reason) });
    },
    setLastSuccess(project, at) {
      m.lastSuccess.set({ project: projects.value(project) }, at.getTime() / 1000);
    },
    setCatalogArchival(archival) {
      m.archivalPending.set(nonNegative('pending', archival.pending));
      const now = (archival.now ?? new Date()).getTime();
      const oldest = archival.oldestFinishedAt?.getTime();
      m.archivalLag.set(oldest === undefined ? 0 : Math.max(0, (now - oldest) / 1000));
    },
    setLeader(leader) {
      m.leader.set(leader ? 1 : 0);
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
