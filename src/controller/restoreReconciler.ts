// RestoreRequest: Pending → InProgress → Succeeded | Failed, into a NEW database and bucket.
// A restore cut short by a controller restart is not resumed: its target may hold part of the
// data, and restores never write over existing data; it fails with reason Interrupted and says
// what to clean up.
import { RestoreRequest } from '../../api/v1alpha1/restoreRequest.ts';
import { validate } from '../../api/v1alpha1/parse.ts';
import type { EngineContext } from '../engine/context.ts';
import { archiveRestore } from '../engine/history.ts';
import { runRestore, type RestoreResult } from '../engine/restore/restore.ts';
import { humanDuration } from '../engine/units.ts';
import type { Logger } from '../observability/logger.ts';
import { markFailed, progressWriter, readyCondition } from './requestStatus.ts';
import { requireProjectNamespace } from './tenancy.ts';
import { afterJob, type JobExecutor } from './jobExecutor.ts';
import {
  requestLifecycle,
  type Lifecycle,
  type RequestReconcilerOptions,
  type Requeue,
} from './lifecycle.ts';
import { reportFinished, requestLogger } from './observe.ts';
import type { Metrics } from '../observability/metrics.ts';
import { withSpan } from '../observability/tracing.ts';
import { terminalStates, type Resource, type Resources } from './resources.ts';

const plural = 'restorerequests';

function succeededStatus(result: RestoreResult, started: Date, generation?: number): Record<string, unknown> {
  const completed = new Date();
  const dl = result.documentLibrary;
  const message = `restored database ${result.database.instanceId}/${result.database.databaseName} and ${dl.objectCount} documents into ${dl.bucket}/${dl.prefix}`;
  return {
    state: 'Succeeded',
    reason: 'RestoreCompleted',
    message,
    restoreId: result.restoreId,
    backupId: result.backupId,
    completionTime: completed.toISOString(),
    duration: humanDuration((completed.getTime() - started.getTime()) / 1000),
    conditions: [readyCondition('True', 'RestoreCompleted', message, generation)],
  };
}

function interrupted(spec: RestoreRequest['spec'] | undefined): Error {
  const target = spec?.target;
  return new Error(
    `the controller restarted during the restore; the target database ${target?.database.databaseName ?? '(default name)'} on ${target?.database.instanceId ?? '?'} and ${target?.documentLibrary.bucket ?? '?'}/${target?.documentLibrary.prefix ?? ''} may hold part of the data: remove them and create a new RestoreRequest`,
  );
}

export type RestoreReconcilerOptions = RequestReconcilerOptions;

export class RestoreReconciler {
  private readonly resources: Resources;
  private readonly engine: EngineContext;
  private readonly log: Logger;
  private readonly progressIntervalMs: number;
  private readonly executor: JobExecutor | undefined;
  private readonly metrics: Metrics | undefined;
  readonly lifecycle: Lifecycle;

  constructor(resources: Resources, engine: EngineContext, options: RestoreReconcilerOptions = {}) {
    this.resources = resources;
    this.engine = engine;
    this.log = engine.log;
    this.progressIntervalMs = options.progressIntervalMs ?? 2000;
    this.executor = options.executor;
    this.metrics = options.metrics;
    this.lifecycle = requestLifecycle(
      resources,
      { plural, archive: (resource) => this.archive(resource) },
      options,
      engine.log,
    );
  }

  async reconcile(key: string): Promise<Requeue> {
    const [namespace = '', name = ''] = key.split('/');
    const resource = await this.resources.read(plural, namespace, name);
    if (!resource) return undefined;
    if (resource.metadata.deletionTimestamp !== undefined) return this.lifecycle.finalize(resource);
    if (terminalStates.has(resource.status?.state ?? '')) return this.lifecycle.finished(resource);
    if (!(await this.lifecycle.ensureFinalizer(resource))) return { requeueAfterMs: 0 };
    if (resource.status?.state === 'InProgress' && this.executor) {
      // executor: job — the worker Job outlives the controller: adopt it
      await this.runAsJob(resource, this.executor);
      return undefined;
    }
    if (resource.status?.state === 'InProgress') {
      const err = interrupted(resource.spec as RestoreRequest['spec']);
      await markFailed(this.resources, resource, err, { plural, otherwise: 'Interrupted' });
      return undefined;
    }
    let request: RestoreRequest;
    try {
      request = validate(RestoreRequest, { ...resource, status: undefined }, `RestoreRequest ${key}`);
      requireProjectNamespace(this.engine.config, request.spec.projectId, namespace);
    } catch (err) {
      await markFailed(this.resources, resource, err, { plural, otherwise: 'RestoreFailed' });
      return undefined;
    }
    await this.run(resource, request);
    return undefined;
  }

  /** The catalog row of a finished restore (the engine wrote it unless the catalog was down). */
  private async archive(resource: Resource): Promise<void> {
    const status = resource.status ?? {};
    const spec = resource.spec as Partial<RestoreRequest['spec']>;
    if (typeof status.restoreId !== 'string' || typeof status.backupId !== 'string') return;
    if (spec.projectId === undefined || spec.environment === undefined) return;
    await archiveRestore(this.engine, {
      state: status.state === 'Succeeded' ? 'Succeeded' : 'Failed',
      restoreId: status.restoreId,
      backupId: status.backupId,
      projectId: spec.projectId,
      environment: spec.environment,
      crName: resource.metadata.name,
      crNamespace: resource.metadata.namespace,
      startTime: typeof status.startTime === 'string' ? new Date(status.startTime) : new Date(),
      reason: typeof status.message === 'string' ? status.message : undefined,
    });
  }

  private async run(resource: Resource, request: RestoreRequest): Promise<void> {
    const ref = resource.metadata;
    const started = new Date();
    await this.resources.updateStatus(plural, ref, () => ({
      state: 'InProgress',
      reason: 'Started',
      message: 'restoring the database, then the document library',
      startTime: started.toISOString(),
      observedGeneration: ref.generation,
      conditions: [readyCondition('False', 'InProgress', 'restore running', ref.generation)],
    }));
    this.resources.event(resource, 'Normal', 'Started', 'restore started');
    if (this.executor) await this.runAsJob(resource, this.executor);
    else await this.execute(resource, request, started);
  }

  /** The data-moving step: in the controller, or in a worker Job (`lc2-backup worker restore`). */
  private async execute(resource: Resource, request: RestoreRequest, started: Date): Promise<void> {
    const ref = resource.metadata;
    try {
      const onProgress = progressWriter(
        this.resources,
        { plural, resource, intervalMs: this.progressIntervalMs },
        this.log,
      );
      const result = await withSpan(
        'restore',
        { 'lc2.project': request.spec.projectId, 'k8s.namespace.name': ref.namespace },
        () =>
          runRestore(
            {
              ...this.engine,
              onProgress,
              log: requestLogger(this.log, { namespace: ref.namespace, name: ref.name }),
            },
            request,
          ),
      );
      const written = await this.resources.updateStatus(plural, ref, () =>
        succeededStatus(result, started, ref.generation),
      );
      if (written) reportFinished(this.metrics, 'restore', written);
      this.resources.event(
        resource,
        'Normal',
        'Completed',
        `restore ${result.restoreId} of ${result.backupId} succeeded`,
      );
    } catch (err) {
      const reason = await markFailed(this.resources, resource, err, {
        plural,
        started,
        otherwise: 'RestoreFailed',
      });
      reportFinished(this.metrics, 'restore', { ...resource, status: { state: 'Failed', reason } });
      this.log.warn(`restore failed: ${err instanceof Error ? err.message : String(err)}`, {
        namespace: ref.namespace,
        name: ref.name,
        reason,
      });
    }
  }

  private async runAsJob(resource: Resource, executor: JobExecutor): Promise<void> {
    const outcome = await executor.run('restore', resource, this.engine.signal);
    const ended = await afterJob(this.resources, plural, resource, outcome);
    if (ended === undefined) return;
    const { after } = ended;
    if (ended.finished) {
      reportFinished(this.metrics, 'restore', after);
      return;
    }
    const startTime = after.status?.startTime;
    await markFailed(this.resources, after, ended.error, {
      plural,
      started: typeof startTime === 'string' ? new Date(startTime) : undefined,
      otherwise: 'RestoreFailed',
    });
  }

  /** In a worker Job: runs the request's restore in this process and writes its final status. */
  async work(namespace: string, name: string): Promise<string | undefined> {
    const resource = await this.resources.get(plural, namespace, name);
    if (!resource || terminalStates.has(resource.status?.state ?? '')) return resource?.status?.state;
    const request = validate(
      RestoreRequest,
      { ...resource, status: undefined },
      `RestoreRequest ${namespace}/${name}`,
    );
    const startTime = resource.status?.startTime;
    await this.execute(resource, request, typeof startTime === 'string' ? new Date(startTime) : new Date());
    return (await this.resources.get(plural, namespace, name))?.status?.state;
  }
}
