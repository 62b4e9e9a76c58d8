// The controller of bench/controller-scale.ts, in a process of its own so that its RSS is its
// own: the real Controller against the test bed's API server, with the engine's data steps in
// memory (MemoryObjectStore buckets, an in-memory DatabaseSnapshots), so what is measured is the
// controller and its API traffic, not data movement. The catalog is the bed's PostgreSQL (as
// deployed) or PGlite in memory (`--catalog pglite`), by LC2_CATALOG_URL.
//
// Talks to the parent in JSON lines on stdout: `baseline` before the controller starts, `ready`
// once its informers have listed, `rss` every 250 ms, `final` after SIGTERM or SIGINT (HTTP
// requests by destination and API call, connections, API latency, event-loop delay, warnings).
//
//   node bench/controller-scale-child.ts '<ChildOptions as JSON>'   (started by the parent)
import { subscribe } from 'node:diagnostics_channel';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { openCatalog } from '../src/catalog/catalog.ts';
import { parseConfig } from '../src/config/config.ts';
import { preferSmallHeap } from '../src/controller/heap.ts';
import { Controller } from '../src/controller/controller.ts';
import { readyCondition } from '../src/controller/requestStatus.ts';
import type { Resource } from '../src/controller/resources.ts';
import { KubeClient, mergePatch, type WatchEvent } from '../src/kube/client.ts';
import { Informer } from '../src/kube/informer.ts';
import { customPath } from '../src/kube/paths.ts';
import type { Logger } from '../src/observability/logger.ts';
import { MemoryObjectStore } from '../src/providers/memory/objectStore.ts';
import {
  ownershipTags,
  type DatabaseInstance,
  type DatabaseSnapshot,
  type DatabaseSnapshots,
  type WaitOptions,
} from '../src/providers/types.ts';
import type { ChildOptions } from './controller-scale-shared.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;

// Lines go out in batches, one write every 100 ms: writes to a pipe are synchronous on Linux, and
// one per status write would be the controller paying for its own measuring. `ready` and `final`
// go at once (with what waits before them).
let unsent: string[] = [];
const flush = (): void => {
  if (unsent.length === 0) return;
  const text = unsent.join('');
  unsent = [];
  process.stdout.write(text);
};
setInterval(flush, 100).unref();
const emit = (line: Record<string, unknown>, now = false): void => {
  unsent.push(`${JSON.stringify(line)}\n`);
  if (now) flush();
};

/** A DatabaseSnapshots that keeps its snapshots in a Map: no SDK, no network, instant. */
class MemorySnapshots implements DatabaseSnapshots {
  readonly name: string;
  readonly #projectId: string;
  readonly #snapshots = new Map<string, DatabaseSnapshot>();
  readonly #delayMs: number;
  created = 0;

  constructor(projectId: string, delayMs: number) {
    this.name = `memory-rds://${projectId}`;
    this.#projectId = projectId;
    this.#delayMs = delayMs;
  }

  describeInstance(instanceId: string): Promise<DatabaseInstance> {
    return Promise.resolve({
      instanceId,
      status: 'available',
      engine: 'postgres',
      engineVersion: '16.4',
      endpoint: { host: 'db.invalid', port: 5432 },
      allocatedBytes: 20 * 1024 ** 3,
      tags: { [ownershipTags.project]: this.#projectId },
    });
  }

  createSnapshot(input: {
    instanceId: string;
    snapshotId: string;
    tags: Record<string, string>;
  }): Promise<{ snapshot: DatabaseSnapshot; adopted: boolean }> {
    const existing = this.#snapshots.get(input.snapshotId);
    if (existing) return Promise.resolve({ snapshot: existing, adopted: true });
    const snapshot: DatabaseSnapshot = {
      snapshotId: input.snapshotId,
      instanceId: input.instanceId,
      status: 'available',
      percentProgress: 100,
      engine: 'postgres',
      engineVersion: '16.4',
      sizeBytes: 20 * 1024 ** 3,
      createdAt: new Date(),
      tags: input.tags,
    };
    this.#snapshots.set(input.snapshotId, snapshot);
    this.created++;
    return Promise.resolve({ snapshot, adopted: false });
  }

  getSnapshot(snapshotId: string): Promise<DatabaseSnapshot | undefined> {
    return Promise.resolve(this.#snapshots.get(snapshotId));
  }

  async waitForSnapshot(snapshotId: string, wait?: WaitOptions): Promise<DatabaseSnapshot> {
    if (this.#delayMs > 0) await sleep(this.#delayMs, undefined, { signal: wait?.signal });
    const snapshot = this.#snapshots.get(snapshotId);
    if (!snapshot) throw new Error(`snapshot ${snapshotId} vanished`);
    wait?.onProgress?.(100, 'available');
    return snapshot;
  }

  deleteSnapshot(snapshotId: string): Promise<void> {
    this.#snapshots.delete(snapshotId);
    return Promise.resolve();
  }

  restoreInstance(): Promise<{ instance: DatabaseInstance; adopted: boolean }> {
    return Promise.reject(new Error('the controller benchmark never restores'));
  }

  waitForInstance(): Promise<DatabaseInstance> {
    return Promise.reject(new Error('the controller benchmark never restores'));
  }

  deleteRestoredInstance(): Promise<void> {
    return Promise.resolve();
  }
}

/** `GET leases`, `PATCH backuprequests/status`, … : the API call a path makes, names dropped. */
function apiCall(method: string, path: string): string {
  const parts = (path.split('?')[0] ?? '').split('/').filter((p) => p !== '');
  const ns = parts.indexOf('namespaces');
  const watch = path.includes('watch=true') ? ' (watch)' : '';
  if (ns < 0) return `${method} ${parts.at(-1) ?? '/'} (all namespaces)${watch}`;
  if (parts.length <= ns + 2) return `${method} ${parts.at(-1) ?? '/'}${watch}`;
  const resource = parts[ns + 2] ?? '';
  const sub = parts[ns + 4];
  return `${method} ${resource}${sub === undefined ? '' : `/${sub}`}${parts.length === ns + 3 ? ' (collection)' : ''}${watch}`;
}

const connections = { count: 0 };
/** How long the API server took to answer (request created → response headers), in ms. */
const apiLatency = createHistogram();
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

// the controller's clock: when a request's latest status write left the client's queue (sent)
const statusPath = /\/namespaces\/([^/]+)\/backuprequests\/([^/]+)\/status$/;
const statusSent = new Map<string, number>();

/** Every HTTP request the process makes (node:http(s): the controller's client, the AWS SDK's). */
function countRequests(): {
  byCall: Map<string, number>;
  byDestination: Map<string, number>;
  sentAt: Map<string, number[]>;
} {
  const byCall = new Map<string, number>();
  const byDestination = new Map<string, number>();
  // when each call of a kind was sent (ms): the parent counts those during the creates
  const sentAt = new Map<string, number[]>();
  const count = (origin: string, method: string, path: string): void => {
    byDestination.set(origin, (byDestination.get(origin) ?? 0) + 1);
    const call = apiCall(method, path);
    byCall.set(call, (byCall.get(call) ?? 0) + 1);
    const times = sentAt.get(call) ?? [];
    times.push(Date.now());
    sentAt.set(call, times);
  };
  const started = new WeakMap<object, number>();
  subscribe('http.client.request.start', (message) => {
    const { request } = message as { request: { host: string; method: string; path: string } };
    count(`node:http ${request.host}`, request.method, request.path);
    const status = request.method === 'PATCH' ? statusPath.exec(request.path) : null;
    if (status !== null) statusSent.set(`${status[1] ?? ''}/${status[2] ?? ''}`, Date.now());
    if (!request.path.includes('watch=true')) started.set(request, performance.now());
  });
  // request sent → response read: how long the API server took to answer
  subscribe('http.client.response.finish', (message) => {
    const at = started.get((message as { request: object }).request);
    if (at !== undefined) apiLatency.record(Math.max(1, Math.round(performance.now() - at)));
  });
  // the same over HTTP/2 (the client's calls when the API server offers h2; watches stay on HTTP/1.1)
  subscribe('http2.client.stream.start', (message) => {
    const { stream, headers } = message as { stream: object; headers: Record<string, string> };
    const [method, path] = [headers[':method'] ?? '', headers[':path'] ?? ''];
    count(`node:http2 ${headers[':authority'] ?? ''}`, method, path);
    const status = method === 'PATCH' ? statusPath.exec(path) : null;
    if (status !== null) statusSent.set(`${status[1] ?? ''}/${status[2] ?? ''}`, Date.now());
    started.set(stream, performance.now());
  });
  subscribe('http2.client.stream.finish', (message) => {
    const at = started.get((message as { stream: object }).stream);
    if (at !== undefined) apiLatency.record(Math.max(1, Math.round(performance.now() - at)));
  });
  subscribe('net.client.socket', () => {
    connections.count++;
  });
  return { byCall, byDestination, sentAt };
}

/** Nothing printed (log lines would cost the controller time); warnings counted, a few kept. */
function countingLogger(): Logger & { warnings: number; samples: string[] } {
  const samples: string[] = [];
  const logger = {
    warnings: 0,
    samples,
    info: (): void => undefined,
    warn: (message: string): void => {
      logger.warnings++;
      const shape = message.replace(/\d+/g, 'N');
      if (samples.length < 8 && !samples.some((s) => s.replace(/\d+/g, 'N') === shape)) samples.push(message);
    },
  };
  return logger;
}

const requests = countRequests();
const projectIds = Array.from({ length: options.projects }, (_, i) => `p${String(i).padStart(3, '0')}`);
const config = parseConfig(
  {
    // never opened: the engine's `stores` below answers every store name with the memory store
    stores: { mem: { type: 'file', path: '/nonexistent/lc2-bench' } },
    projects: Object.fromEntries(
      projectIds.map((p) => [
        p,
        {
          provider: 'aws',
          aws: { region: 'us-east-1' },
          databases: { db: { database: 'app', user: 'app' } },
          buckets: { [`${p}-src`]: 'mem', [`${p}-dst`]: 'mem' },
        },
      ]),
    ),
    controller: {
      projectConcurrency: options.projectConcurrency,
      globalConcurrency: options.globalConcurrency,
      namespace: options.leaseNamespace,
    },
  },
  'controller benchmark',
);

const store = new MemoryObjectStore('memory://bench');
for (const p of projectIds) {
  await store.createBucket(`${p}-src`);
  await store.createBucket(`${p}-dst`);
  for (let i = 0; i < options.objects; i++) {
    const body = Buffer.from(`document ${i} of ${p}\n`.repeat(8));
    await store.put(`${p}-src`, `document_library/${i}/1.0`, body, { size: body.length });
  }
}
const snapshots = new Map(projectIds.map((p) => [p, new MemorySnapshots(p, options.backupDelayMs)]));
const log = countingLogger();
// pglite://memory, or the test bed's PostgreSQL (what a deployment uses): set by the parent
const catalog = await openCatalog(process.env.LC2_CATALOG_URL ?? 'pglite://memory');
// as `lc2-backup controller` runs it: --api-concurrency, default 32 (defaultMaxInFlight)
const kube = KubeClient.load({
  kubeconfig: options.kubeconfig,
  maxInFlight: options.apiConcurrency,
  http2: !options.http1,
});
// the controller's own clock for its status writes: when each request's first status write (and
// its InProgress write) was answered by the API server — the reaction without a watcher's lag
const written = new Set<string>();
const request = kube.request.bind(kube);
kube.request = async <T>(
  method: string,
  path: string,
  opts?: Parameters<KubeClient['request']>[2],
): Promise<T> => {
  const calledAt = Date.now();
  const answer = await request<T>(method, path, opts);
  const m = method === 'PATCH' ? statusPath.exec(path) : null;
  if (m !== null) {
    const key = `${m[1] ?? ''}/${m[2] ?? ''}`;
    const state = (answer as { status?: { state?: string } }).status?.state ?? '';
    for (const mark of [key, `${key} ${state}`]) {
      if (written.has(mark)) continue;
      written.add(mark);
      emit({
        type: 'write',
        t: Date.now(),
        calledAt,
        sentAt: statusSent.get(key),
        key,
        state,
        first: mark === key,
      });
    }
  }
  return answer;
};
// the controller's own clock for its watch: when its informer was told of each request (the
// ADDED event) — so that the reaction splits into the API server's watch delivery and what the
// controller itself takes from there to its first status write
const told = new Set<string>();
const watch = kube.watch.bind(kube);
kube.watch = async <T>(
  path: string,
  query: Parameters<KubeClient['watch']>[1],
  onEvent: (event: WatchEvent<T>) => void,
  signal?: AbortSignal,
): Promise<void> =>
  watch<T>(
    path,
    query,
    (event) => {
      const meta = (event.object as { metadata?: { namespace?: string; name?: string } }).metadata;
      if (event.type === 'ADDED' && path.endsWith('/backuprequests') && meta !== undefined) {
        const key = `${meta.namespace ?? ''}/${meta.name ?? ''}`;
        if (!told.has(key)) {
          told.add(key);
          emit({ type: 'seen', t: Date.now(), key });
        }
      }
      onEvent(event);
    },
    signal,
  );
/**
 * The peer (`--peer null`): the least any controller does, one status write per request as soon
 * as its informer sees it, with no queue, no slots and no engine. Its reaction is the floor this
 * API server allows under the same burst. The status it writes has the shape of ours' first answer
 * (state, reason, a message of the same length, observedGeneration, the Ready condition): a
 * three-field status instead measured half the p99 (0.31–0.41 against 0.75–0.83 s, 2026-11-27),
 * since the API server's cost per write grows with the object it stores and sends to each watcher.
 */
function nullController(): { start(): Promise<void>; stop(): Promise<void> } {
  const informer = new Informer<Resource>(kube, customPath('backuprequests'), {
    onAdd: (o) => {
      const { namespace, name, resourceVersion, generation } = o.metadata;
      const project = (o.spec as { projectId?: string } | undefined)?.projectId ?? '';
      const message = `null controller: all 2 of project ${project}'s slots are taken; position 3 in line`;
      void kube
        .request('PATCH', customPath('backuprequests', namespace, name, 'status'), {
          body: {
            metadata: { resourceVersion },
            status: {
              state: 'Succeeded',
              reason: 'NullController',
              message,
              observedGeneration: generation,
              conditions: [readyCondition('True', 'NullController', message, generation)],
            },
          },
          contentType: mergePatch,
        })
        .catch(() => undefined);
    },
  });
  return { start: () => informer.start(), stop: () => informer.stop() };
}

// as `lc2-backup controller` does (LC2_SMALL_HEAP from the bench's --small-heap)
if (options.peer !== 'null') preferSmallHeap(config.controller.executor);

const controller =
  options.peer === 'null'
    ? nullController()
    : new Controller({
        kube,
        concurrency: options.queueConcurrency,
        engine: {
          config,
          catalog,
          stores: { get: () => store },
          snapshots: {
            get: (projectId) => {
              const provider = snapshots.get(projectId);
              if (!provider) throw new Error(`no snapshots for ${projectId}`);
              return provider;
            },
          },
          log,
          tolerateCatalogOutage: true,
          initiator: 'controller',
        },
      });

function percentiles(h: { percentile(p: number): number; max: number; count?: number }, unit: number) {
  const at = (p: number): number => Math.round((h.percentile(p) / unit) * 10) / 10;
  return { p50: at(50), p90: at(90), p99: at(99), max: Math.round((h.max / unit) * 10) / 10 };
}

const memory = (): Record<string, number> => {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
};
/**
 * The heap still reachable once the run is over (after a full GC; the 1,000 finished requests
 * stay in the informer caches): what the run left behind, as against what the GC had not yet
 * collected (the RSS). A full GC made callable only now, so the run itself is not changed.
 */
const liveHeap = (): number => {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
};
emit({ type: 'baseline', t: Date.now(), ...memory() });
await controller.start();
emit({ type: 'ready', t: Date.now(), ...memory() }, true);
let elu = performance.eventLoopUtilization();
const sampler = setInterval(() => {
  // the share of the last interval the event loop was busy (not waiting for I/O)
  const now = performance.eventLoopUtilization();
  emit({
    type: 'rss',
    t: Date.now(),
    ...memory(),
    elu: performance.eventLoopUtilization(now, elu).utilization,
  });
  elu = now;
}, 250);

/**
 * The heap V8 holds at the end (before the full GC), and the young generation's part of it: V8
 * sizes the young generation from the machine's memory (up to 64 MB per semi-space on this 24 GiB
 * machine), and once grown it stays, so it is most of the RSS above the start's.
 */
const heapHeld = (): { heapCommitted: number; youngCommitted: number } => ({
  heapCommitted: process.memoryUsage().heapTotal,
  youngCommitted: getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0,
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  clearInterval(sampler);
  const held = heapHeld();
  const liveHeapAfter = liveHeap();
  void controller
    .stop()
    .then(() => catalog.close())
    .finally(() => {
      emit(
        {
          type: 'final',
          t: Date.now(),
          ...memory(),
          liveHeapAfter,
          ...held,
          snapshotsCreated: [...snapshots.values()].reduce((n, s) => n + s.created, 0),
          connections: connections.count,
          requestsByDestination: Object.fromEntries(requests.byDestination),
          requestsByCall: Object.fromEntries([...requests.byCall].sort((a, b) => b[1] - a[1])),
          requestsSentAt: Object.fromEntries(requests.sentAt),
          apiLatencyMs: percentiles(apiLatency, 1),
          eventLoopDelayMs: percentiles(loopDelay, 1e6),
          warnings: log.warnings,
          warningSamples: log.samples,
        },
        true,
      );
      // exit (rather than wait for idle sockets) so that --cpu-prof writes its profile now
      process.exit(0);
    });
};
// SIGTERM from the parent; SIGINT when Ctrl-C reaches the whole process group
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
