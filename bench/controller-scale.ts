// How the controller copes with a burst (issue 5, "Benchmark"): 1,000 BackupRequests over 100
// projects created at once against the test bed's real API server (etcd + kube-apiserver; the
// bed's kube-controller-manager runs too), the controller in a child process
// (bench/controller-scale-child.ts) whose engine steps are in memory, so the controller and its
// API traffic are what is measured. Reports create → first status write (the controller's
// reaction) and create → InProgress (p50/p99; the first wave separately: 10 requests per
// project with a limit of 2 means most wait by design), the slot hand-off (a project's backup
// finished → its next one InProgress), time to drain, the controller's RSS (max of a 250 ms
// sampling), its API calls by kind (and how many were sent while the creates went on), the CPU of
// each process (and its share while the creates went on), the BackupRequest watches the API
// server closed for falling behind, and the per-project limit (never exceeded: from the watch of
// the requests, cross-checked with the slot Leases; the bench's watches run on a thread of their
// own, bench/controller-scale-watch.ts, so the instrument is never the slow watcher that holds
// the controller's watch back). Writes JSON + Markdown under
// bench/results/controller-scale-<timestamp>.{json,md}. Ctrl-C reports what finished so far.
//
//   node bench/controller-scale.ts            (on Node 24; or `npm run bench:controller -- …`)
//     [--projects 100] [--per-project 10] [--project-concurrency 2] [--global-concurrency 200]
//     [--queue-concurrency 256 (the controller's default)] [--api-concurrency 32 (the controller's default)] [--parallel 50 (creates in flight)] [--objects 5 (per project)]
//     [--backup-ms 0 (delay of the in-memory snapshot)] [--catalog postgres|pglite]
//     [--peer null (a null controller instead of ours: one status write per request, the floor)]
//     [--cpu-prof <dir> (summarise it: node bench/cpu-profile.ts <dir> [--from s --to s])]
//     [--apiserver-prof <file> [--apiserver-prof-seconds 6] (the kube-apiserver's Go CPU profile
//      from the first create on; read it with `go tool pprof -top <file>`)]
//     [--node-options=<flags for the controller's Node> (default: the Helm chart's nodeOptions, as
//      deployed; --node-options= for Node's defaults)] [--small-heap (as executor: job runs it)]
//     [--http1 (the controller's --api-http1: HTTP/1.1 keep-alive connections, not one HTTP/2 one)]
//     [--label <text>] [--timeout 900 (s)]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { defaultMaxInFlight } from '../src/kube/client.ts';
import { watchOnThread } from './controller-scale-watch.ts';
import {
  cpuMsOf,
  inParallel,
  installCrds,
  shareConnections,
  type ChildOptions,
} from './controller-scale-shared.ts';
import { kubeGet, Testbed, type PartialTestbedInfo, type ServiceName } from '../test/env/testbed.ts';

interface Settings extends Omit<ChildOptions, 'kubeconfig'> {
  perProject: number;
  parallel: number;
  cpuProfDir: string | undefined;
  /** Where to write the kube-apiserver's CPU profile (pprof) taken from the first create on. */
  apiserverProf: string | undefined;
  apiserverProfSeconds: number;
  timeoutMs: number;
  /** Free text recorded with the results (e.g. which variant of the code ran). */
  label: string;
  /** Extra Node flags for the controller's process (e.g. --max-old-space-size=128). */
  nodeOptions: string[];
  /** The controller favours a small heap, as with executor: job (LC2_SMALL_HEAP=1; src/controller/heap.ts). */
  smallHeap: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
const group = 'backup.liferay.cloud';
const version = 'v1alpha1';
const plural = 'backuprequests';
const leaseNamespace = 'lc2-backup';
const terminal = new Set(['Succeeded', 'Failed']);

/** The controller's Node flags as the Helm chart deploys it (`nodeOptions` in its values.yaml). */
function chartNodeOptions(): string {
  const values = readFileSync(join(here, '..', 'deploy', 'helm', 'lc2-backup', 'values.yaml'), 'utf8');
  const line = /^nodeOptions:[ \t]*(.*)$/m.exec(values);
  if (line === null) throw new Error("controller-scale: no nodeOptions in the Helm chart's values.yaml");
  return (line[1] ?? '').replace(/^(['"])(.*)\1$/, '$2').trim();
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      projects: { type: 'string', default: '100' },
      'per-project': { type: 'string', default: '10' },
      'project-concurrency': { type: 'string', default: '2' },
      'global-concurrency': { type: 'string', default: '200' },
      'queue-concurrency': { type: 'string', default: '256' },
      'api-concurrency': { type: 'string', default: String(defaultMaxInFlight) },
      parallel: { type: 'string', default: '50' },
      objects: { type: 'string', default: '5' },
      'backup-ms': { type: 'string', default: '0' },
      catalog: { type: 'string', default: 'postgres' },
      peer: { type: 'string', default: 'none' },
      'cpu-prof': { type: 'string' },
      'apiserver-prof': { type: 'string' },
      'apiserver-prof-seconds': { type: 'string', default: '6' },
      label: { type: 'string', default: '' },
      'node-options': { type: 'string', default: chartNodeOptions() },
      'small-heap': { type: 'boolean', default: false },
      http1: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '900' },
    },
  });
  const n = (v: string | undefined): number => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) throw new Error(`controller-scale: "${v}" is not a whole number`);
    return x;
  };
  if (values.catalog !== 'postgres' && values.catalog !== 'pglite')
    throw new Error(`controller-scale: --catalog is postgres or pglite, not "${values.catalog}"`);
  if (values.peer !== 'none' && values.peer !== 'null')
    throw new Error(`controller-scale: --peer is null (the null controller) or none, not "${values.peer}"`);
  return {
    catalog: values.catalog,
    peer: values.peer,
    projects: n(values.projects),
    perProject: n(values['per-project']),
    projectConcurrency: n(values['project-concurrency']),
    globalConcurrency: n(values['global-concurrency']),
    queueConcurrency: n(values['queue-concurrency']),
    apiConcurrency: n(values['api-concurrency']),
    http1: values.http1,
    parallel: n(values.parallel),
    objects: n(values.objects),
    backupDelayMs: n(values['backup-ms']),
    cpuProfDir: values['cpu-prof'],
    apiserverProf: values['apiserver-prof'],
    apiserverProfSeconds: n(values['apiserver-prof-seconds']),
    label: values.label,
    nodeOptions: values['node-options'].split(' ').filter((o) => o !== ''),
    smallHeap: values['small-heap'],
    timeoutMs: n(values.timeout) * 1000,
    leaseNamespace,
  };
}

const log = (line: string): void => {
  process.stderr.write(`controller-scale: ${line}\n`);
};

/** Ctrl-C or SIGTERM: stop waiting, report what finished so far, stop the test bed. */
const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: reporting what finished so far`);
    interrupted.abort();
  });
}

// ---------------------------------------------------------------------------------------------
// Setting up the cluster

const projectId = (i: number): string => `p${String(i).padStart(3, '0')}`;
const namespaceOf = (project: string): string => `proj-${project}-prd`;

async function createNamespaces(kc: KubeConfig, s: Settings): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const names = [leaseNamespace, ...Array.from({ length: s.projects }, (_, i) => namespaceOf(projectId(i)))];
  await inParallel(names, 20, (name) => core.createNamespace({ body: { metadata: { name } } }));
}

// ---------------------------------------------------------------------------------------------
// What the watches see

interface Track {
  project: string;
  sentAt?: number;
  createdAt?: number;
  /** The bench's watch delivered the request (its ADDED event): the API server's watch lag. */
  seenAt?: number;
  /** The controller's first change of any kind (its finalizer). */
  touchedAt?: number;
  firstStatusAt?: number;
  firstState?: string;
  /** The controller's clock: its first status write answered, its InProgress write answered. */
  firstWriteAt?: number;
  /** The controller's clock: its first status write was called (before its client's queue). */
  firstCalledAt?: number;
  /** … and sent (left its client's queue). */
  firstSentAt?: number;
  inProgressWrittenAt?: number;
  /** The controller's clock: its watch told it of the request (ADDED). */
  controllerSeenAt?: number;
  inProgressAt?: number;
  finishedAt?: number;
  finalState?: string;
  finalReason?: string;
  waitingWrites: number;
  state?: string;
}

interface Observed {
  requests: Map<string, Track>;
  inProgress: Map<string, number>;
  maxInProgress: Map<string, number>;
  /** Slot-lease holders ever seen, by project. */
  holders: Map<string, Set<string>>;
  /** Slot Leases per project (lc2-slot-<project>-<i>). */
  slotLeases: Map<string, Set<string>>;
  maxGlobalInProgress: number;
  terminal: number;
  finishedAt: number[];
  lastFinishedIn: Map<string, number>;
  handoffs: number[];
  timeline: { t: number; created: number; inProgress: number; finished: number; load1: number }[];
}

interface WatchedObject {
  metadata?: {
    name?: string;
    namespace?: string;
    finalizers?: string[];
    resourceVersion?: string;
  };
  spec?: { projectId?: string; holderIdentity?: string };
  status?: { state?: string; reason?: string };
}

function newObserved(): Observed {
  return {
    requests: new Map(),
    inProgress: new Map(),
    maxInProgress: new Map(),
    holders: new Map(),
    slotLeases: new Map(),
    maxGlobalInProgress: 0,
    terminal: 0,
    finishedAt: [],
    lastFinishedIn: new Map(),
    handoffs: [],
    timeline: [],
  };
}

function trackOf(obs: Observed, key: string, project: string): Track {
  let track = obs.requests.get(key);
  if (!track) {
    track = { project, waitingWrites: 0 };
    obs.requests.set(key, track);
  }
  return track;
}

function countInProgress(obs: Observed, project: string, delta: number): void {
  const now = (obs.inProgress.get(project) ?? 0) + delta;
  obs.inProgress.set(project, now);
  obs.maxInProgress.set(project, Math.max(now, obs.maxInProgress.get(project) ?? 0));
  const total = [...obs.inProgress.values()].reduce((a, b) => a + b, 0);
  obs.maxGlobalInProgress = Math.max(obs.maxGlobalInProgress, total);
}

/** A change of a request's state as the watch shows it. */
function onStateChange(obs: Observed, track: Track, state: string | undefined, at: number): void {
  const { project } = track;
  if (track.state === 'InProgress') countInProgress(obs, project, -1);
  if (state === 'InProgress') {
    countInProgress(obs, project, 1);
    if (track.inProgressAt === undefined) {
      track.inProgressAt = at;
      const freed = obs.lastFinishedIn.get(project);
      if (track.firstState !== 'InProgress' && freed !== undefined) obs.handoffs.push(at - freed);
    }
  }
  if (state !== undefined && terminal.has(state) && track.finishedAt === undefined) {
    track.finishedAt = at;
    track.finalState = state;
    obs.terminal++;
    obs.finishedAt.push(at);
    obs.lastFinishedIn.set(project, at);
  }
  track.state = state;
}

function onRequestEvent(obs: Observed, obj: WatchedObject, at: number): void {
  const metadata = obj.metadata ?? {};
  const track = trackOf(obs, `${metadata.namespace ?? ''}/${metadata.name ?? ''}`, obj.spec?.projectId ?? '');
  track.seenAt ??= at;
  if (metadata.finalizers?.length) track.touchedAt ??= at;
  if (obj.status?.state !== undefined)
    onStatus(obs, track, { state: obj.status.state, reason: obj.status.reason }, at);
}

function onStatus(
  obs: Observed,
  track: Track,
  status: { state: string; reason?: string | undefined },
  at: number,
) {
  track.firstStatusAt ??= at;
  track.firstState ??= status.state;
  if (status.reason === 'WaitingForSlot') track.waitingWrites++;
  if (terminal.has(status.state)) track.finalReason = status.reason;
  if (status.state !== track.state) onStateChange(obs, track, status.state, at);
}

function onLeaseEvent(obs: Observed, obj: WatchedObject, projects: Set<string>): void {
  const name = obj.metadata?.name ?? '';
  const match = /^lc2-slot-(.+)-(\d+)$/.exec(name);
  if (!match || !projects.has(match[1] ?? '')) return;
  const project = match[1] ?? '';
  const leases = obs.slotLeases.get(project) ?? new Set<string>();
  leases.add(name);
  obs.slotLeases.set(project, leases);
  const holder = obj.spec?.holderIdentity;
  if (holder === undefined || holder === '') return;
  const holders = obs.holders.get(project) ?? new Set<string>();
  holders.add(holder);
  obs.holders.set(project, holders);
}

// ---------------------------------------------------------------------------------------------
// The controller's process

interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

interface ChildLine {
  type: 'baseline' | 'ready' | 'rss' | 'final' | 'write' | 'seen';
  t: number;
  /** `write`: a status write of this request answered (its first, or its first of `state`). */
  key?: string;
  state?: string;
  first?: boolean;
  /** `write`: when the controller called it (the answer is at `t`). */
  calledAt?: number;
  /** `write`: when it left the controller's client queue for the API server. */
  sentAt?: number;
  rss?: number;
  heapUsed?: number;
  /** `final`: the heap reachable after a full GC at the end of the run. */
  liveHeapAfter?: number;
  /** `final`: the heap V8 held at the end, before that GC: all of it, and the young generation. */
  heapCommitted?: number;
  youngCommitted?: number;
  /** `rss`: the event loop's utilisation over the last sampling interval (0–1). */
  elu?: number;
  external?: number;
  arrayBuffers?: number;
  snapshotsCreated?: number;
  connections?: number;
  apiLatencyMs?: Percentiles;
  eventLoopDelayMs?: Percentiles;
  requestsByDestination?: Record<string, number>;
  requestsByCall?: Record<string, number>;
  /** `final`: when each of the controller's calls was sent, by kind (ms since the epoch). */
  requestsSentAt?: Record<string, number[]>;
  warnings?: number;
  warningSamples?: string[];
}

interface ChildHandle {
  proc: ChildProcess;
  lines: ChildLine[];
  ready: Promise<ChildLine>;
  final: Promise<ChildLine>;
  rss: { max: number; maxHeap: number; maxExternal: number; samples: number };
}

/** `catalogUrl` goes by environment (LC2_CATALOG_URL), not argv: it holds the bed's password. */
function startChild(options: ChildOptions, s: Settings, catalogUrl: string): ChildHandle {
  const args = [
    ...s.nodeOptions,
    ...(s.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${s.cpuProfDir}`]),
    join(here, 'controller-scale-child.ts'),
    JSON.stringify(options),
  ];
  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LC2_CATALOG_URL: catalogUrl, LC2_SMALL_HEAP: s.smallHeap ? '1' : '0' },
  });
  const lines: ChildLine[] = [];
  const rss = { max: 0, maxHeap: 0, maxExternal: 0, samples: 0 };
  let onReady: (l: ChildLine) => void = () => undefined;
  let onFinal: (l: ChildLine) => void = () => undefined;
  const ready = new Promise<ChildLine>((resolve, reject) => {
    onReady = resolve;
    proc.once('exit', (code) => {
      reject(new Error(`the controller process exited (${code}) before it was ready`));
    });
  });
  const final = new Promise<ChildLine>((resolve, reject) => {
    onFinal = resolve;
    proc.once('exit', (code) => {
      reject(new Error(`the controller process exited (${code}) without its final report`));
    });
  });
  ready.catch(() => undefined);
  final.catch(() => undefined);
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (text) => {
    const line = JSON.parse(text) as ChildLine;
    lines.push(line);
    // a status write's line carries no memory figures: process.memoryUsage() (even its rss())
    // costs the controller ~1 ms a call here, which it would pay twice per request
    rss.max = Math.max(rss.max, line.rss ?? 0);
    rss.maxHeap = Math.max(rss.maxHeap, line.heapUsed ?? 0);
    rss.maxExternal = Math.max(rss.maxExternal, line.external ?? 0);
    if (line.type === 'rss') rss.samples++;
    if (line.type === 'ready') onReady(line);
    if (line.type === 'final') onFinal(line);
  });
  return { proc, lines, ready, final, rss };
}

/** utime + stime of a process in ms (Linux /proc, 1/100 s ticks); 0 once it is gone. */

// ---------------------------------------------------------------------------------------------
// The burst

function requestBody(project: string, seq: number): Record<string, unknown> {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'BackupRequest',
    metadata: { name: `${project}-prd-backup-20250101-${String(seq).padStart(6, '0')}` },
    spec: {
      projectId: project,
      environment: 'prd',
      provider: 'aws',
      database: { type: 'snapshot', instanceId: 'db' },
      documentLibrary: { sourceBucket: `${project}-src`, destinationBucket: `${project}-dst` },
    },
  };
}

/** Round-robin over the projects (as schedules firing at the same minute would), `parallel` at once. */
async function createBurst(kc: KubeConfig, s: Settings, obs: Observed): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const order = Array.from({ length: s.projects * s.perProject }, (_, k) => ({
    project: projectId(k % s.projects),
    seq: Math.floor(k / s.projects),
  }));
  await inParallel(order, s.parallel, async ({ project, seq }) => {
    const body = requestBody(project, seq);
    const name = (body.metadata as { name: string }).name;
    const track = trackOf(obs, `${namespaceOf(project)}/${name}`, project);
    track.sentAt = Date.now();
    await custom.createNamespacedCustomObject({
      group,
      version,
      plural,
      namespace: namespaceOf(project),
      body,
    });
    track.createdAt = Date.now();
  });
}

/** The commit the controller's code comes from, `+dirty` when src/controller has local changes. */
function codeVersion(): string {
  const git = (...args: string[]): string =>
    spawnSync('git', args, { cwd: join(here, '..'), encoding: 'utf8' }).stdout.trim();
  const commit = git('rev-parse', '--short', 'HEAD');
  if (commit === '') return 'unknown';
  return git('status', '--porcelain', '--', 'src/controller') === '' ? commit : `${commit}+dirty`;
}

function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** Once a second, from the first create on: requests created, InProgress, finished; load average. */
function sampleTimeline(obs: Observed): () => void {
  const sample = (): void => {
    obs.timeline.push({
      t: Date.now(),
      created: [...obs.requests.values()].filter((r) => r.createdAt !== undefined).length,
      inProgress: [...obs.inProgress.values()].reduce((a, b) => a + b, 0),
      finished: obs.terminal,
      load1: loadAverage(),
    });
  };
  sample();
  const timer = setInterval(sample, 1000);
  return () => {
    clearInterval(timer);
    sample();
  };
}

async function waitForDrain(obs: Observed, total: number, timeoutMs: number): Promise<boolean> {
  const started = Date.now();
  let lastLog = started;
  while (obs.terminal < total) {
    const now = Date.now();
    if (now - started > timeoutMs || interrupted.signal.aborted) return false;
    if (now - lastLog >= 10_000) {
      lastLog = now;
      const inProgress = [...obs.inProgress.values()].reduce((a, b) => a + b, 0);
      log(`${obs.terminal}/${total} finished, ${inProgress} InProgress`);
    }
    await sleep(100);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Figures

interface Dist {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function dist(values: readonly number[]): Dist {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
  return { n: sorted.length, p50: at(50), p90: at(90), p99: at(99), max: sorted.at(-1) ?? NaN };
}

function since(
  tracks: Track[],
  from: (t: Track) => number | undefined,
  to: (t: Track) => number | undefined,
) {
  return tracks.flatMap((t) => {
    const [a, b] = [from(t), to(t)];
    return a === undefined || b === undefined ? [] : [b - a];
  });
}

/** The times a Track records (epoch ms). */
type TimeOf = { [K in keyof Track]-?: Track[K] extends number | undefined ? K : never }[keyof Track];

/** The spread of `to` − `from` over the tracks that have both. */
function between(tracks: Track[], from: TimeOf, to: TimeOf): Dist {
  return dist(
    since(
      tracks,
      (t) => t[from],
      (t) => t[to],
    ),
  );
}

interface Figures {
  /** create answered → the controller's first status write answered (the controller's clock). */
  reactionWritten: Dist;
  /** create answered → InProgress written, first wave (the controller's clock). */
  firstWaveWritten: Dist;
  reaction: Dist;
  /** create answered → ADDED delivered to the bench's watch. */
  watchLag: Dist;
  /** create answered → ADDED delivered to the controller's watch (its clock). */
  controllerWatchLag: Dist;
  /** The controller's own part: its watch told it → its first status write answered. */
  ownReaction: Dist;
  /** Its watch told it → its first status write called (the work queue and the reconcile). */
  ownBeforeCall: Dist;
  /** The first status write called → answered (its client's queue, then the API server). */
  firstCall: Dist;
  /** The first status write called → sent (its client's queue). */
  firstCallQueued: Dist;
  /** The first status write sent → answered (the API server, and the controller's event loop). */
  firstCallServed: Dist;
  touched: Dist;
  inProgressAll: Dist;
  inProgressFirstWave: Dist;
  inProgressWaited: Dist;
  handoff: Dist;
  run: Dist;
  createCall: Dist;
  createSpanMs: number;
  /** First create sent, last create answered (epoch ms): the burst. */
  createWindow: [number, number];
  drainMs: number;
  succeeded: number;
  failed: number;
  failedReasons: Record<string, number>;
  neverInProgress: number;
  waitingWritesPerWaiter: number;
  maxInProgressPerProject: number;
  projectsAtLimit: number;
  maxGlobalInProgress: number;
  leaseCheck: { slotLeasesMax: number; inProgressWithoutLease: number };
}

function figures(obs: Observed, s: Settings): Figures {
  const tracks = [...obs.requests.values()];
  const created = (t: Track): number | undefined => t.createdAt;
  const firstWave = tracks.filter((t) => t.firstState === 'InProgress');
  const waited = tracks.filter((t) => t.firstState !== 'InProgress');
  const sent = tracks.flatMap((t) => (t.sentAt === undefined ? [] : [t.sentAt]));
  const createdAll = tracks.flatMap((t) => (t.createdAt === undefined ? [] : [t.createdAt]));
  const failed = tracks.filter((t) => t.finalState === 'Failed');
  const failedReasons: Record<string, number> = {};
  for (const t of failed)
    failedReasons[t.finalReason ?? '?'] = (failedReasons[t.finalReason ?? '?'] ?? 0) + 1;
  const maxes = [...obs.maxInProgress.values()];
  const maxPerProject = Math.max(0, ...maxes);
  let inProgressWithoutLease = 0;
  for (const [key, t] of obs.requests)
    if (t.inProgressAt !== undefined && obs.holders.get(t.project)?.has(key) !== true)
      inProgressWithoutLease++;
  return {
    reactionWritten: dist(since(tracks, created, (t) => t.firstWriteAt)),
    firstWaveWritten: dist(since(firstWave, created, (t) => t.inProgressWrittenAt)),
    reaction: dist(since(tracks, created, (t) => t.firstStatusAt)),
    watchLag: dist(since(tracks, created, (t) => t.seenAt)),
    controllerWatchLag: dist(since(tracks, created, (t) => t.controllerSeenAt)),
    ownReaction: between(tracks, 'controllerSeenAt', 'firstWriteAt'),
    ownBeforeCall: between(tracks, 'controllerSeenAt', 'firstCalledAt'),
    firstCall: between(tracks, 'firstCalledAt', 'firstWriteAt'),
    firstCallQueued: between(tracks, 'firstCalledAt', 'firstSentAt'),
    firstCallServed: between(tracks, 'firstSentAt', 'firstWriteAt'),
    touched: dist(since(tracks, created, (t) => t.touchedAt)),
    inProgressAll: dist(since(tracks, created, (t) => t.inProgressAt)),
    inProgressFirstWave: dist(since(firstWave, created, (t) => t.inProgressAt)),
    inProgressWaited: dist(since(waited, created, (t) => t.inProgressAt)),
    handoff: dist(obs.handoffs),
    run: between(tracks, 'inProgressAt', 'finishedAt'),
    createCall: dist(since(tracks, (t) => t.sentAt, created)),
    createSpanMs: Math.max(...createdAll) - Math.min(...sent),
    createWindow: [Math.min(...sent), Math.max(...createdAll)],
    drainMs: Math.max(...obs.finishedAt) - Math.min(...sent),
    succeeded: tracks.filter((t) => t.finalState === 'Succeeded').length,
    failed: failed.length,
    failedReasons,
    neverInProgress: tracks.filter((t) => t.inProgressAt === undefined).length,
    waitingWritesPerWaiter: waited.reduce((n, t) => n + t.waitingWrites, 0) / Math.max(1, waited.length),
    maxInProgressPerProject: maxPerProject,
    projectsAtLimit: maxes.filter((m) => m === s.projectConcurrency).length,
    maxGlobalInProgress: obs.maxGlobalInProgress,
    leaseCheck: {
      slotLeasesMax: Math.max(0, ...[...obs.slotLeases.values()].map((l) => l.size)),
      inProgressWithoutLease,
    },
  };
}

const pct = (p: Percentiles | undefined): string =>
  p === undefined ? '–' : `${p.p50} / ${p.p99} / ${p.max}`;
const ms = (v: number): string => (Number.isNaN(v) ? '–' : `${Math.round(v)}`);
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

function distRows(f: Figures): string[][] {
  const row = (what: string, d: Dist): string[] => [
    what,
    String(d.n),
    ms(d.p50),
    ms(d.p90),
    ms(d.p99),
    ms(d.max),
  ];
  return [
    ['latency (ms)', 'n', 'p50', 'p90', 'p99', 'max'],
    row('create → first status write answered (reaction; controller clock)', f.reactionWritten),
    row('create → InProgress written, first wave (controller clock)', f.firstWaveWritten),
    row('create → first status seen by the bench watch', f.reaction),
    row('create → the request itself seen by the bench watch (watch delivery)', f.watchLag),
    row("create → the request delivered to the controller's watch (controller clock)", f.controllerWatchLag),
    row("controller's own part: its watch delivered it → first status write answered", f.ownReaction),
    row('… of which: its watch delivered it → first status write called (queue, reconcile)', f.ownBeforeCall),
    row('… and: first status write called → answered (client queue, API server)', f.firstCall),
    row('…… of which: called → sent (the client queue)', f.firstCallQueued),
    row('…… and: sent → answered (the API server)', f.firstCallServed),
    row('create → finalizer added (first touch)', f.touched),
    row('create → InProgress, first wave', f.inProgressFirstWave),
    row('create → InProgress, waited for a slot', f.inProgressWaited),
    row('create → InProgress, all', f.inProgressAll),
    row("slot hand-off (project's backup done → next InProgress)", f.handoff),
    row('InProgress → Succeeded/Failed', f.run),
    row('create call (sent → answered)', f.createCall),
  ];
}

interface Report {
  startedAt: string;
  settings: Omit<Settings, 'cpuProfDir' | 'apiserverProf' | 'apiserverProfSeconds' | 'timeoutMs'>;
  machine: { cpus: string; cores: number; memoryGiB: number; node: string; loadAvgAtStart: string };
  /** git commit of the code measured (`+dirty`: src/controller had uncommitted changes). */
  code: string;
  drained: boolean;
  figures: Figures;
  rss: {
    baselineBytes: number;
    readyBytes: number;
    maxBytes: number;
    maxHeapBytes: number;
    /** Memory outside the JS heap that V8 knows of (Buffers, WASM), max. */
    maxExternalBytes: number;
    /** The heap still reachable at the end, after a full GC (a leak would show here). */
    liveHeapAfterBytes: number;
    /** The heap V8 held at the end before that GC, and its young generation's part. */
    heapCommittedEndBytes: number;
    youngCommittedEndBytes: number;
    samples: number;
  };
  cpu: {
    controllerMs: number;
    apiserverMs: number;
    etcdMs: number;
    kubeControllerManagerMs: number;
    catalogMs: number;
    benchMs: number;
  };
  /** The same, from the first create until the last create was answered. */
  cpuDuringCreates: Report['cpu'];
  /** Once a second from the first create (t in ms since): requests created, InProgress, finished, the machine's 1-minute load average, the controller's RSS. */
  timeline: {
    t: number;
    created: number;
    inProgress: number;
    finished: number;
    load1: number;
    rssMB: number;
  }[];
  controllerRequests: {
    total: number;
    perBackupRequest: number;
    byCall: Record<string, number>;
    /** Of those, the calls sent while the bench's creates went on (first sent → last answered). */
    duringCreates: Record<string, number>;
  };
  requestsByDestination: Record<string, number>;
  /** TLS connections the controller opened to the API server. */
  connections: number;
  /** BackupRequest watches the API server closed for falling behind (the bench's, the controller's, kube-controller-manager's). */
  closedWatches: number;
  /** The controller's API calls: request → response headers (watches excluded). */
  apiLatencyMs: Percentiles | undefined;
  /** How late the controller's event loop ran timers (monitorEventLoopDelay). */
  eventLoopDelayMs: Percentiles | undefined;
  eventLoopUtilisation: { mean: number; max: number } | undefined;
  snapshotsCreated: number;
  warnings: number;
  warningSamples: string[];
  verdicts: { target: string; met: boolean; detail: string }[];
  cpuProfile?: string | undefined;
}

function verdicts(r: Omit<Report, 'verdicts'>, s: Settings): Report['verdicts'] {
  const f = r.figures;
  const total = s.projects * s.perProject;
  return [
    {
      target: 'p99 < 500 ms (controller reaction: create answered → first status write answered)',
      met: f.reactionWritten.p99 < 500 && f.reactionWritten.n === total,
      detail: `p99 ${ms(f.reactionWritten.p99)} ms over ${f.reactionWritten.n} requests (as the bench's watch saw it: p99 ${ms(f.reaction.p99)} ms)`,
    },
    {
      target:
        'p99 < 500 ms (create answered → InProgress written, for requests with a free slot: the first wave)',
      met: f.firstWaveWritten.p99 < 500 && f.firstWaveWritten.n === f.inProgressFirstWave.n,
      detail: `p99 ${ms(f.firstWaveWritten.p99)} ms over ${f.firstWaveWritten.n} requests (as the bench's watch saw it: p99 ${ms(f.inProgressFirstWave.p99)} ms)`,
    },
    {
      target: 'RSS < 200 MB (controller process, max of 250 ms samples)',
      met: r.rss.maxBytes < 200e6,
      detail: `max ${mb(r.rss.maxBytes)}`,
    },
    {
      target: `per-project limit (${s.projectConcurrency}) never exceeded`,
      met:
        f.maxInProgressPerProject <= s.projectConcurrency &&
        f.leaseCheck.slotLeasesMax <= s.projectConcurrency,
      detail: `max InProgress in one project ${f.maxInProgressPerProject}; slot Leases per project ≤ ${f.leaseCheck.slotLeasesMax}; InProgress without a slot Lease: ${f.leaseCheck.inProgressWithoutLease}`,
    },
    {
      target: 'every request Succeeded',
      met: f.succeeded === total,
      detail: `${f.succeeded} Succeeded, ${f.failed} Failed, ${total - f.succeeded - f.failed} unfinished`,
    },
  ];
}

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '))
    .join('\n');
}

function markdownTable(rows: string[][]): string {
  const [head = [], ...body] = rows;
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  return [line(head), line(head.map((_, i) => (i === 0 ? '---' : '--:'))), ...body.map(line)].join('\n');
}

function summaryRows(r: Report): string[][] {
  const f = r.figures;
  const s = r.settings;
  return [
    ['figure', 'value'],
    ['time to drain (first create sent → last Succeeded/Failed)', `${(f.drainMs / 1000).toFixed(1)} s`],
    ['creates (first sent → last answered)', `${(f.createSpanMs / 1000).toFixed(1)} s`],
    ['Succeeded / Failed', `${f.succeeded} / ${f.failed}`],
    [
      `max InProgress in one project (limit ${s.projectConcurrency})`,
      `${f.maxInProgressPerProject} (${f.projectsAtLimit} projects reached it)`,
    ],
    [`max InProgress overall (global limit ${s.globalConcurrency})`, String(f.maxGlobalInProgress)],
    ['WaitingForSlot status writes per waiting request', f.waitingWritesPerWaiter.toFixed(1)],
    ['controller RSS: after start / max', `${mb(r.rss.readyBytes)} / ${mb(r.rss.maxBytes)}`],
    [
      'controller heap used / external (Buffers, WASM), max',
      `${mb(r.rss.maxHeapBytes)} / ${mb(r.rss.maxExternalBytes)}`,
    ],
    ['controller heap reachable at the end (after a full GC)', mb(r.rss.liveHeapAfterBytes)],
    [
      'controller heap held at the end (before it): all / young generation',
      `${mb(r.rss.heapCommittedEndBytes)} / ${mb(r.rss.youngCommittedEndBytes)}`,
    ],
    [
      'CPU s: controller / kube-apiserver / etcd / kube-controller-manager / catalog PostgreSQL / bench',
      cpuFigures(r.cpu),
    ],
    [
      '… of which while the creates went on (first create → last create answered)',
      cpuFigures(r.cpuDuringCreates),
    ],
    [
      'API calls by the controller (per BackupRequest)',
      `${r.controllerRequests.total} (${r.controllerRequests.perBackupRequest.toFixed(1)})`,
    ],
    ['connections the controller opened to the API server', String(r.connections)],
    ['BackupRequest watches the API server closed for falling behind (any watcher)', String(r.closedWatches)],
    ['controller API call latency p50 / p99 / max (ms)', pct(r.apiLatencyMs)],
    ['controller event-loop delay p50 / p99 / max (ms)', pct(r.eventLoopDelayMs)],
    [
      'controller event-loop utilisation during the creates: mean / max of 250 ms samples',
      r.eventLoopUtilisation === undefined
        ? '–'
        : `${(r.eventLoopUtilisation.mean * 100).toFixed(0)} % / ${(r.eventLoopUtilisation.max * 100).toFixed(0)} %`,
    ],
  ];
}

function callRows(r: Report): string[][] {
  const total = r.settings.projects * r.settings.perProject;
  return [
    ['controller API call', 'count', 'per request', 'during the creates'],
    ...Object.entries(r.controllerRequests.byCall).map(([call, n]) => [
      call,
      String(n),
      (n / total).toFixed(1),
      String(r.controllerRequests.duringCreates[call] ?? 0),
    ]),
  ];
}

function title(r: Report): string {
  const s = r.settings;
  return `controller-scale: ${s.projects * s.perProject} BackupRequests over ${s.projects} projects (${s.perProject} each), project limit ${s.projectConcurrency}, global limit ${s.globalConcurrency}, queue concurrency ${s.queueConcurrency}, API calls in flight ${s.apiConcurrency}, ${s.parallel} creates in flight, ${s.objects} objects per project, backup step delay ${s.backupDelayMs} ms, catalog ${s.catalog}${s.peer === 'null' ? ', PEER: the null controller (one status write per request on its informer add; no queue, slots or engine)' : ''}${s.nodeOptions.length === 0 ? '' : `, controller node ${s.nodeOptions.join(' ')}`}${s.smallHeap ? ', small heap (as executor: job)' : ''}${s.http1 ? ', API calls over HTTP/1.1 (--api-http1)' : ''}${s.label === '' ? '' : ` [${s.label}]`}`;
}

function markdown(r: Report): string {
  return [
    `# ${title(r)}`,
    '',
    `${r.startedAt} · ${r.machine.cores} × ${r.machine.cpus}, ${r.machine.memoryGiB} GiB · Node ${r.machine.node} · load average at start ${r.machine.loadAvgAtStart} · code ${r.code}${r.drained ? '' : ' · **did not drain before the timeout**'}`,
    '',
    markdownTable(distRows(r.figures)),
    '',
    markdownTable(summaryRows(r)),
    '',
    ...r.verdicts.map((v) => `- ${v.met ? 'MET' : '**NOT MET**'}: ${v.target} — ${v.detail}`),
    '',
    "The 500 ms target is read as the controller's reaction time. With 10 requests per project and a limit of 2, eight of every ten requests wait for a slot by design, so their create → InProgress is the wait in line (several backups long), not the controller's speed; what the controller owes them is a prompt `Pending`/`WaitingForSlot` status, and InProgress within 500 ms for those that find a slot free (the first wave). The floor under the same burst is what `--peer null` measures: a null controller that writes one status per request as soon as its informer sees it.",
    '',
    markdownTable(callRows(r)),
    '',
    `Requests by destination: ${Object.entries(r.requestsByDestination)
      .map(([d, n]) => `${d} ${n}`)
      .join(
        ', ',
      )}. Snapshots (in memory) created: ${r.snapshotsCreated}. Warnings logged by the controller: ${r.warnings}${r.warningSamples.length > 0 ? `, e.g. ${r.warningSamples.map((w) => `"${w.slice(0, 200)}"`).join('; ')}` : ''}.`,
    ...(r.cpuProfile === undefined ? [] : ['', `CPU profile of the controller: ${r.cpuProfile}`]),
    '',
  ].join('\n');
}

function printReport(r: Report): void {
  const out = [
    title(r),
    `code ${r.code}, load average at start ${r.machine.loadAvgAtStart}`,
    ...(r.drained
      ? []
      : ['DID NOT DRAIN before the timeout (or was interrupted): figures cover what finished']),
    '',
    table(distRows(r.figures)),
    '',
    table(summaryRows(r)),
    '',
    ...r.verdicts.map((v) => `${v.met ? 'MET    ' : 'NOT MET'} ${v.target}: ${v.detail}`),
    '',
    table(callRows(r)),
    '',
  ];
  process.stdout.write(out.join('\n'));
}

async function writeReport(r: Report): Promise<string> {
  const dir = join(here, 'results');
  await mkdir(dir, { recursive: true });
  const base = join(dir, `controller-scale-${r.startedAt.replace(/[:.]/g, '-')}`);
  await writeFile(`${base}.json`, `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(`${base}.md`, markdown(r));
  return base;
}

// ---------------------------------------------------------------------------------------------

/** The CPU seconds of each process, as the summary shows them. */
function cpuFigures(cpu: Report['cpu']): string {
  const { controllerMs, apiserverMs, etcdMs, kubeControllerManagerMs, catalogMs, benchMs } = cpu;
  return [controllerMs, apiserverMs, etcdMs, kubeControllerManagerMs, catalogMs, benchMs]
    .map((c) => (c / 1000).toFixed(1))
    .join(' / ');
}

/** CPU time (ms) used since now by the controller, the bed's servers and this process. */
function cpuMeter(pids: Record<string, number>, controller: number | undefined): () => Report['cpu'] {
  const read = (): Report['cpu'] => {
    const own = process.cpuUsage();
    return {
      controllerMs: cpuMsOf(controller),
      apiserverMs: cpuMsOf(pids['kube-apiserver']),
      etcdMs: cpuMsOf(pids.etcd),
      kubeControllerManagerMs: cpuMsOf(pids['kube-controller-manager']),
      catalogMs: cpuMsOf(pids.postgres),
      benchMs: (own.user + own.system) / 1000,
    };
  };
  const before = read();
  return () => {
    const after = read();
    const keys = Object.keys(before) as (keyof Report['cpu'])[];
    return Object.fromEntries(keys.map((k) => [k, after[k] - before[k]])) as Report['cpu'];
  };
}

interface Run {
  startedAt: string;
  code: string;
  loadAvgAtStart: string;
  drained: boolean;
  obs: Observed;
  child: ChildHandle;
  ready: ChildLine;
  final: ChildLine;
  cpu: Report['cpu'];
  cpuDuringCreates: Report['cpu'];
  closedWatches: number;
}

/** How many of each kind's times fall in [from, to]. */
function countWithin(times: Record<string, number[]>, [from, to]: [number, number]): Record<string, number> {
  return Object.fromEntries(
    Object.entries(times).map(([kind, ts]) => [kind, ts.filter((t) => t >= from && t <= to).length]),
  );
}

function memoryFigures(run: Run): Report['rss'] {
  const { child, final } = run;
  return {
    baselineBytes: child.lines.find((l) => l.type === 'baseline')?.rss ?? 0,
    readyBytes: run.ready.rss ?? 0,
    maxBytes: child.rss.max,
    maxHeapBytes: child.rss.maxHeap,
    maxExternalBytes: child.rss.maxExternal,
    liveHeapAfterBytes: final.liveHeapAfter ?? 0,
    heapCommittedEndBytes: final.heapCommitted ?? 0,
    youngCommittedEndBytes: final.youngCommitted ?? 0,
    samples: child.rss.samples,
  };
}

function assemble(run: Run, s: Settings): Report {
  const { child, final } = run;
  const byCall = final.requestsByCall ?? {};
  const total = Object.values(byCall).reduce((a, b) => a + b, 0);
  const {
    cpuProfDir: _dir,
    apiserverProf: _prof,
    apiserverProfSeconds: _seconds,
    timeoutMs: _timeout,
    ...shown
  } = s;
  const measured = figures(run.obs, s);
  const partial: Omit<Report, 'verdicts'> = {
    startedAt: run.startedAt,
    settings: shown,
    machine: {
      cpus: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 1024 ** 3),
      node: process.version,
      loadAvgAtStart: run.loadAvgAtStart,
    },
    code: run.code,
    drained: run.drained,
    figures: measured,
    rss: memoryFigures(run),
    cpu: run.cpu,
    cpuDuringCreates: run.cpuDuringCreates,
    controllerRequests: {
      total,
      perBackupRequest: total / (s.projects * s.perProject),
      byCall,
      duringCreates: countWithin(final.requestsSentAt ?? {}, measured.createWindow),
    },
    requestsByDestination: final.requestsByDestination ?? {},
    connections: final.connections ?? 0,
    closedWatches: run.closedWatches,
    apiLatencyMs: final.apiLatencyMs,
    eventLoopDelayMs: final.eventLoopDelayMs,
    eventLoopUtilisation: utilisation(child.lines, measured.createWindow),
    snapshotsCreated: final.snapshotsCreated ?? 0,
    warnings: final.warnings ?? 0,
    warningSamples: final.warningSamples ?? [],
    cpuProfile: s.cpuProfDir,
    timeline: run.obs.timeline.map((point) => ({
      ...point,
      t: point.t - (run.obs.timeline[0]?.t ?? 0),
      rssMB: Math.round((nearestRss(child.lines, point.t) ?? 0) / 1e6),
    })),
  };
  return { ...partial, verdicts: verdicts(partial, s) };
}

/** Mean and max of the controller's event-loop utilisation samples within `window`. */
function utilisation(
  lines: ChildLine[],
  window: [number, number],
): { mean: number; max: number } | undefined {
  const [from, to] = window;
  const samples = lines.flatMap((l) =>
    l.type === 'rss' && l.elu !== undefined && l.t > from && l.t <= to ? [l.elu] : [],
  );
  if (samples.length === 0) return undefined;
  return { mean: samples.reduce((a, b) => a + b, 0) / samples.length, max: Math.max(...samples) };
}

function nearestRss(lines: ChildLine[], t: number): number | undefined {
  return lines.filter((l) => l.type === 'rss' && l.t <= t).at(-1)?.rss;
}

/** The controller's own clock (its watch's ADDED, its status writes answered) onto each request. */
function applyChildClock(obs: Observed, lines: ChildLine[]): void {
  for (const line of lines) {
    const track =
      line.type === 'write' || line.type === 'seen' ? obs.requests.get(line.key ?? '') : undefined;
    if (track === undefined) continue;
    if (line.type === 'seen') {
      track.controllerSeenAt = line.t;
      continue;
    }
    if (line.first === true) {
      track.firstWriteAt = line.t;
      track.firstCalledAt = line.calledAt;
      track.firstSentAt = line.sentAt;
    }
    if (line.state === 'InProgress') track.inProgressWrittenAt ??= line.t;
  }
}

/**
 * Watches of BackupRequests the API server closed because the watcher fell behind
 * (`apiserver_terminated_watchers_total`): each close made every watcher of the kind wait first.
 */
async function terminatedWatchers(kube: { server: string; token: string }): Promise<number> {
  const metrics = await kubeGet(kube.server, kube.token, '/metrics');
  const line = metrics.body
    .split('\n')
    .find((l) => l.startsWith('apiserver_terminated_watchers_total{') && l.includes(`resource="${plural}"`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/**
 * The kube-apiserver's CPU profile over `s.apiserverProfSeconds` from now (its `/debug/pprof`,
 * on by default; the bed's token is in system:masters), written to `s.apiserverProf`.
 */
async function profileApiServer(kube: { server: string; token: string }, s: Settings): Promise<string> {
  const file = s.apiserverProf ?? '';
  const body = await new Promise<Buffer>((resolve, reject) => {
    const req = httpsGet(
      `${kube.server}/debug/pprof/profile?seconds=${s.apiserverProfSeconds}`,
      { headers: { authorization: `Bearer ${kube.token}` }, rejectUnauthorized: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode === 200) resolve(Buffer.concat(chunks));
          else reject(new Error(`kube-apiserver /debug/pprof/profile answered ${res.statusCode}`));
        });
      },
    );
    req.on('error', reject);
  });
  await writeFile(file, body);
  return `${file} (go tool pprof -top ${file})`;
}

async function runBench(bed: Testbed, info: PartialTestbedInfo, s: Settings): Promise<Report> {
  const { kube } = info;
  if (!kube) throw new Error('the test bed did not start Kubernetes');
  const catalogUrl = s.catalog === 'pglite' ? 'pglite://memory' : info.postgres?.url;
  if (catalogUrl === undefined) throw new Error('the test bed did not start PostgreSQL');
  const startedAt = new Date().toISOString();
  const code = codeVersion(); // now: the child loads the sources when it starts
  const loadAvgAtStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const kc = new KubeConfig();
  kc.loadFromFile(kube.kubeconfig);
  shareConnections(kc);
  await installCrds(kube);
  await createNamespaces(kc, s);
  const obs = newObserved();
  const projects = new Set(Array.from({ length: s.projects }, (_, i) => projectId(i)));
  // the bench's watches on a thread of their own: read on this one, busy with the creates, the
  // watch fell behind and the API server's waits for it held back the controller's watch too
  const stopWatches = watchOnThread(
    kube.kubeconfig,
    [
      `/apis/${group}/${version}/${plural}`,
      `/apis/coordination.k8s.io/v1/namespaces/${leaseNamespace}/leases`,
    ],
    ({ watch, at, object }) => {
      if (watch === 0) onRequestEvent(obs, object as WatchedObject, at);
      else onLeaseEvent(obs, object as WatchedObject, projects);
    },
  );
  const child = startChild({ ...s, kubeconfig: kube.kubeconfig }, s, catalogUrl);
  try {
    const ready = await child.ready;
    log(`controller ready (RSS ${mb(ready.rss ?? 0)}); creating ${s.projects * s.perProject} BackupRequests`);
    const cpu = cpuMeter(bed.pids(), child.proc.pid);
    const stopTimeline = sampleTimeline(obs);
    const apiserverProfile = s.apiserverProf === undefined ? undefined : profileApiServer(kube, s);
    await createBurst(kc, s, obs);
    const cpuDuringCreates = cpu();
    log('all created; waiting for them to finish');
    const drained = await waitForDrain(obs, s.projects * s.perProject, s.timeoutMs);
    stopTimeline();
    if (apiserverProfile !== undefined) log(`kube-apiserver CPU profile: ${await apiserverProfile}`);
    await sleep(500); // the last releases and archival writes
    const closedWatches = await terminatedWatchers(kube);
    const used = cpu();
    child.proc.kill('SIGTERM');
    const final = await child.final;
    applyChildClock(obs, child.lines);
    return assemble(
      {
        startedAt,
        code,
        loadAvgAtStart,
        drained,
        obs,
        child,
        ready,
        final,
        cpu: used,
        cpuDuringCreates,
        closedWatches,
      },
      s,
    );
  } finally {
    await stopWatches();
    // the child exits by itself after its final line (--cpu-prof writes the profile then)
    const exited = new Promise((resolve) => child.proc.once('exit', resolve));
    if (child.proc.exitCode === null) await Promise.race([exited, sleep(15_000)]);
    if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
  }
}

const s = settings();
const bed = await Testbed.create();
try {
  const services: ServiceName[] = s.catalog === 'postgres' ? ['kubernetes', 'postgres'] : ['kubernetes'];
  log(`starting ${services.join(' and ')} (the test bed's etcd, kube-apiserver, kube-controller-manager)`);
  const report = await runBench(bed, await bed.up(services), s);
  printReport(report);
  const base = await writeReport(report);
  log(`wrote ${base}.json and ${base}.md`);
} finally {
  await bed.stop();
}
