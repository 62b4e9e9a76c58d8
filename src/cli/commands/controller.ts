// `lc2-backup controller`: watches BackupRequests and RestoreRequests cluster-wide and runs them
// until SIGTERM/SIGINT, then stops taking work and lets the runs in flight finish. With
// --leader-elect (two or more replicas), only the holder of the leader Lease works; a replica
// that loses the Lease aborts its runs at once (they stay InProgress and the new leader resumes
// them) and exits non-zero so its Deployment restarts it as a candidate.
import { Controller } from '../../controller/controller.ts';
import { preferSmallHeap } from '../../controller/heap.ts';
import { LeaderElector } from '../../controller/leader.ts';
import { defaultMaxInFlight, KubeClient } from '../../kube/client.ts';
import { exitCodes } from '../errors.ts';
import { ValidationError } from '../../errors/index.ts';
import { openSession, toolVersion, type GlobalOptions } from '../session.ts';
import type { EngineContext } from '../../engine/context.ts';
import { SnapshotRegistry } from '../../engine/databases.ts';
import { StoreRegistry } from '../../engine/stores.ts';
import { createMetrics, type Metrics } from '../../observability/metrics.ts';
import { createPinoLogger } from '../../observability/pinoLogger.ts';
import { registerConfigSecrets, SecretScrubber } from '../../observability/scrubber.ts';
import { allOf, startObservabilityServer } from '../../observability/server.ts';
import type { Logger } from '../../observability/logger.ts';
import { startTracing, withSpan, type Tracing } from '../../observability/tracing.ts';

export interface ControllerCommandOptions extends GlobalOptions {
  concurrency?: string;
  /** API calls in flight at most (default 32: defaultMaxInFlight). */
  apiConcurrency?: string;
  /** HTTP/1.1 keep-alive connections instead of one HTTP/2 connection (a proxy that mishandles h2). */
  apiHttp1?: boolean;
  /** /metrics, /healthz, /readyz; default LC2_METRICS_PORT, else 8080 (0: any free port). */
  metricsPort?: string;
  leaderElect?: boolean;
  /** Identity in the leader Lease; default: host name and a random suffix. */
  identity?: string;
}

function positiveInteger(text: string, option: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new ValidationError(`${option}: "${text}" is not a whole number ≥ 1; e.g. ${option} 16`);
  }
  return n;
}

/**
 * The controller's API client: the API server answers fastest with a few calls in flight, the
 * rest wait in the client in order of priority (src/kube/scheduler.ts). With leader election, the
 * leader Lease gets a client of its own: a renewal never waits behind the controller's calls.
 */
function kubeClients(options: ControllerCommandOptions): { kube: KubeClient; electorKube?: KubeClient } {
  const http2 = options.apiHttp1 !== true;
  const kube = KubeClient.load({
    maxInFlight: positiveInteger(options.apiConcurrency ?? String(defaultMaxInFlight), '--api-concurrency'),
    http2,
  });
  return options.leaderElect === true
    ? { kube, electorKube: KubeClient.load({ maxInFlight: 2, http2 }) }
    : { kube };
}

/**
 * The engine as the controller runs it: JSON logs, retries counted in metrics, a span per
 * provider call when tracing is on, and an unreachable catalog tolerated (archival catches up).
 */
function controllerEngine(
  base: EngineContext,
  hooks: { metrics: Metrics; tracing: Tracing; log: Logger; signal: AbortSignal },
): EngineContext {
  const { metrics, tracing } = hooks;
  return {
    ...base,
    log: hooks.log,
    stores: new StoreRegistry(base.config, {
      onRetry: (event) => {
        metrics.retried(event.error instanceof Error ? event.error.name : 'Error');
      },
      ...(tracing.enabled
        ? {
            around: <T>(target: { operation: string; bucket: string }, call: () => Promise<T>) =>
              withSpan(`store.${target.operation}`, { 'lc2.bucket': target.bucket }, call),
          }
        : {}),
    }),
    snapshots: new SnapshotRegistry(base.config, { traced: tracing.enabled }),
    // the controller's own progress goes to each request's status, not to a terminal line
    onProgress: undefined,
    tolerateCatalogOutage: true,
    signal: hooks.signal,
  };
}

/** The last successful backup per project from the catalog, so NoSuccessfulBackup26h sees a restart through. */
async function seedLastSuccess(engine: EngineContext, metrics: Metrics): Promise<void> {
  try {
    const rows = await engine.catalog.listBackups({ state: 'Succeeded', limit: 10_000 });
    const newest = new Map<string, Date>();
    for (const row of rows) {
      const at = row.completionTime;
      const seen = newest.get(row.projectId);
      if (at !== null && (seen === undefined || at > seen)) newest.set(row.projectId, at);
    }
    for (const [project, at] of newest) metrics.setLastSuccess(project, at);
  } catch (err) {
    engine.log.warn(`could not read the last successful backups from the catalog: ${String(err)}`);
  }
}

function untilAborted(signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    if (signals.some((s) => s.aborted)) resolve();
    for (const s of signals)
      s.addEventListener(
        'abort',
        () => {
          resolve();
        },
        { once: true },
      );
  });
}

export async function controllerCommand(
  options: ControllerCommandOptions,
  signal: AbortSignal,
): Promise<number> {
  const session = await openSession({ ...options, quiet: false });
  // reconciles mostly wait for the API server (a backup runs beside the queue, holding its
  // slots, not a worker), so many run at once
  const concurrency = positiveInteger(options.concurrency ?? '256', '--concurrency');
  const { kube, electorKube } = kubeClients(options);
  const { config } = session;
  const smallHeap = preferSmallHeap(config.controller.executor);
  // every secret the configuration names is scrubbed from logs, status, Events and spans
  const scrubber = new SecretScrubber();
  registerConfigSecrets(scrubber, config);
  const log = createPinoLogger({ scrubber, base: { component: 'controller' } });
  const metrics = createMetrics({ projects: Object.keys(config.projects) });
  const tracing = await startTracing({
    serviceName: 'lc2-backup-controller',
    serviceVersion: toolVersion,
    scrub: (t) => scrubber.scrub(t),
  });
  const say = (line: string): void => {
    process.stderr.write(`lc2-backup controller: ${line}\n`);
  };
  const work = new AbortController();
  const elector = electorKube
    ? new LeaderElector({
        kube: electorKube,
        namespace: session.config.controller.namespace,
        log,
        ...(options.identity === undefined ? {} : { identity: options.identity }),
      })
    : undefined;
  const engine = controllerEngine(session.ctx, { metrics, tracing, log, signal: work.signal });
  const controller = new Controller({
    kube,
    engine,
    concurrency,
    metrics,
    scrub: (text) => scrubber.scrub(text),
  });
  let leading = elector === undefined;
  const server = await startObservabilityServer({
    port: Number(options.metricsPort ?? process.env.LC2_METRICS_PORT ?? 8080),
    registry: metrics.registry,
    scrub: (text) => scrubber.scrub(text),
    // a standby replica is ready (it waits to lead); the leader once its informers have listed
    readiness: allOf({
      informers: () => !leading || controller.synced || 'the informers have not listed yet',
    }),
  });
  say(`metrics and health on port ${server.port} (/metrics, /healthz, /readyz)`);
  if (smallHeap) say('V8 favours a small heap (--optimize-for-size: executor job, or LC2_SMALL_HEAP=1)');
  await seedLastSuccess(engine, metrics);
  try {
    if (elector) {
      say(
        `waiting to lead (Lease ${session.config.controller.namespace}/lc2-backup-leader, identity ${elector.identity})`,
      );
      await elector.acquire(signal).catch((err: unknown) => {
        if (!signal.aborted) throw err;
      });
      if (signal.aborted) return exitCodes.ok;
      leading = true;
      metrics.setLeader(true);
      elector.lost.addEventListener(
        'abort',
        () => {
          work.abort(elector.lost.reason);
        },
        { once: true },
      );
    }
    await controller.start();
    say(`watching ${kube.server} (${kube.access.source}); Ctrl-C or SIGTERM stops it`);
    if (elector === undefined) metrics.setLeader(true);
    await untilAborted(elector ? [signal, elector.lost] : [signal]);
    if (elector?.lost.aborted === true) {
      metrics.setLeader(false);
      say(`${String(elector.lost.reason)}; stopping`);
      return exitCodes.failure;
    }
    say('stopping; waiting for the runs in flight…');
    return exitCodes.ok;
  } finally {
    await controller.stop();
    await elector?.release();
    kube.close();
    electorKube?.close();
    await server.close();
    await tracing.shutdown();
    await session.close();
  }
}
