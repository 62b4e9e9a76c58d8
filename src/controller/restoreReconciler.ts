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
import { Lifecycle, type Requeue } from './lifecycle.ts';
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

export class RestoreReconciler {
  private readonly resources: Resources;
  private readonly engine: EngineContext;
  private readonly log: Logger;
  private readonly progressIntervalMs: number;
  readonly lifecycle: Lifecycle;

  constructor(
    resources: Resources,
    engine: EngineContext,
    options: { progressIntervalMs?: number; ttlMs?: number; retryMs?: number } = {},
  ) {
    this.resources = resources;
    this.engine = engine;
    this.log = engine.log;
    this.progressIntervalMs = options.progressIntervalMs ?? 2000;
    this.lifecycle = new Lifecycle(
      resources,
      { plural, archive: (resource) => this.archive(resource) },
      {
        ttlMs: options.ttlMs ?? 24 * 3_600_000,
        ...(options.retryMs === undefined ? {} : { retryMs: options.retryMs }),
        log: engine.log,
      },
    );
  }

  async reconcile(key: string): Promise<Requeue> {
    const [namespace = '', name = ''] = key.split('/');
    const resource = await this.resources.get(plural, namespace, name);
    if (!resource) return undefined;
    if (resource.metadata.deletionTimestamp !== undefined) return this.lifecycle.finalize(resource);
    if (terminalStates.has(resource.status?.state ?? '')) return this.lifecycle.finished(resource);
    if (!(await this.lifecycle.ensureFinalizer(resource))) return { requeueAfterMs: 0 };
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
    await this.resources.event(resource, 'Normal', 'Started', 'restore started');
    try {
      const onProgress = progressWriter(
        this.resources,
        { plural, resource, intervalMs: this.progressIntervalMs },
        this.log,
      );
      const result = await runRestore({ ...this.engine, onProgress }, request);
      await this.resources.updateStatus(plural, ref, () => succeededStatus(result, started, ref.generation));
      await this.resources.event(
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
      this.log.warn(`restore failed: ${err instanceof Error ? err.message : String(err)}`, {
        namespace: ref.namespace,
        name: ref.name,
        reason,
      });
    }
  }
}
