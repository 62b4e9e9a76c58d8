// BackupRequest: Pending → InProgress (database, then document library, then manifest, then
// catalog) → Succeeded | Failed. A chain of early returns; terminal states are never touched
// again. Crash safety comes from the engine: the backup id is derived from the request, so a
// request found InProgress after a restart is run again and adopts whatever already finished.
import { BackupRequest } from '../../api/v1alpha1/backupRequest.ts';
import { validate } from '../../api/v1alpha1/parse.ts';
import { runBackup, type BackupResult } from '../engine/backup/backup.ts';
import { humanBytes, type EngineContext } from '../engine/context.ts';
import { humanDuration } from '../engine/units.ts';
import { backupIdentity } from '../format/layout.ts';
import type { Logger } from '../observability/logger.ts';
import { markFailed, progressWriter, readyCondition } from './requestStatus.ts';
import { requireProjectNamespace } from './tenancy.ts';
import { terminalStates, type Resource, type Resources } from './resources.ts';
import type { ProjectSlots, SlotDecision } from './slots.ts';

/** Per-project concurrency: the slots, each project's limit, and its waiting requests in order. */
export interface SlotPolicy {
  manager: ProjectSlots;
  limitFor: (project: string) => number;
  waiting: (project: string) => string[];
}

const plural = 'backuprequests';

function succeededStatus(result: BackupResult, started: Date, generation?: number): Record<string, unknown> {
  const { header } = result;
  const completed = new Date();
  const dl = header.documentLibrary;
  return {
    state: 'Succeeded',
    reason: 'BackupCompleted',
    message: `backed up ${dl.objectCount} documents and the database${result.adopted ? ' (adopted a finished backup)' : ''}`,
    completionTime: completed.toISOString(),
    duration: humanDuration((completed.getTime() - started.getTime()) / 1000),
    database: {
      snapshotId: header.database.snapshotId ?? header.database.artifact?.key,
      size: humanBytes(header.database.size),
      status: 'Succeeded',
    },
    documentLibrary: {
      objectCount: dl.objectCount,
      totalSize: humanBytes(dl.totalSize),
      status: 'Succeeded',
      manifestPath: result.manifestPath,
    },
    conditions: [
      readyCondition('True', 'BackupCompleted', 'Database and document library backup completed', generation),
    ],
  };
}

export class BackupReconciler {
  private readonly resources: Resources;
  private readonly engine: EngineContext;
  private readonly log: Logger;
  private readonly progressIntervalMs: number;
  private readonly slots: SlotPolicy | undefined;

  constructor(
    resources: Resources,
    engine: EngineContext,
    options: { progressIntervalMs?: number; slots?: SlotPolicy } = {},
  ) {
    this.resources = resources;
    this.engine = engine;
    this.log = engine.log;
    this.progressIntervalMs = options.progressIntervalMs ?? 2000;
    this.slots = options.slots;
  }

  async reconcile(key: string): Promise<{ requeueAfterMs: number } | undefined> {
    const [namespace = '', name = ''] = key.split('/');
    const resource = await this.resources.get(plural, namespace, name);
    if (!resource || terminalStates.has(resource.status?.state ?? '')) return undefined;
    let request: BackupRequest;
    try {
      request = validate(BackupRequest, { ...resource, status: undefined }, `BackupRequest ${key}`);
      requireProjectNamespace(this.engine.config, request.spec.projectId, namespace);
    } catch (err) {
      await this.fail(resource, err);
      return undefined;
    }
    const project = request.spec.projectId;
    if (this.slots) {
      const limit = this.slots.limitFor(project);
      const decision = await this.slots.manager.acquire(project, limit, key, this.slots.waiting(project));
      if (!decision.acquired) {
        await this.waitForSlot(resource, project, decision);
        return { requeueAfterMs: 1000 };
      }
      try {
        await this.run(resource, request);
      } finally {
        await this.slots.manager.release(project, limit, key);
      }
      return undefined;
    }
    await this.run(resource, request);
    return undefined;
  }

  private async waitForSlot(resource: Resource, project: string, decision: SlotDecision): Promise<void> {
    const message = `waiting for a slot: ${decision.busy} of project ${project}'s ${decision.limit} running; position ${decision.position ?? 1} in line`;
    await this.resources.updateStatus(plural, resource.metadata, (current) => {
      if (current.status?.state === 'Pending' && current.status.message === message) return undefined;
      return {
        state: 'Pending',
        reason: 'WaitingForSlot',
        message,
        observedGeneration: resource.metadata.generation,
        conditions: [readyCondition('False', 'WaitingForSlot', message, resource.metadata.generation)],
      };
    });
  }

  private async run(resource: Resource, request: BackupRequest): Promise<void> {
    const ref = resource.metadata;
    const generation = ref.generation;
    const startTime = resource.status?.startTime;
    const started = typeof startTime === 'string' ? new Date(startTime) : new Date();
    const { backupId } = backupIdentity(
      request.spec.projectId,
      request.spec.environment,
      request.metadata,
      started,
    );
    const resumed = resource.status?.state === 'InProgress';
    await this.resources.updateStatus(plural, ref, () => ({
      state: 'InProgress',
      backupId,
      reason: resumed ? 'Resumed' : 'Started',
      message: resumed
        ? 'the controller restarted; resuming (finished steps are adopted)'
        : 'backing up the database, then the document library',
      startTime: typeof startTime === 'string' ? startTime : started.toISOString(),
      observedGeneration: generation,
      conditions: [readyCondition('False', 'InProgress', 'backup running', generation)],
    }));
    await this.resources.event(
      resource,
      'Normal',
      resumed ? 'Resumed' : 'Started',
      `backup ${backupId} ${resumed ? 'resumed' : 'started'}`,
    );
    this.log.info(`backup ${backupId} ${resumed ? 'resumed' : 'started'}`, {
      namespace: ref.namespace,
      name: ref.name,
    });
    try {
      const onProgress = progressWriter(
        this.resources,
        { plural, resource, intervalMs: this.progressIntervalMs },
        this.log,
      );
      const result = await runBackup({ ...this.engine, onProgress }, request);
      await this.resources.updateStatus(plural, ref, () => succeededStatus(result, started, generation));
      await this.resources.event(
        resource,
        'Normal',
        'Completed',
        `backup ${backupId} succeeded: ${result.manifestPath}`,
      );
      this.log.info(`backup ${backupId} succeeded`, { namespace: ref.namespace, name: ref.name });
    } catch (err) {
      await this.fail(resource, err, started);
    }
  }

  private async fail(resource: Resource, err: unknown, started?: Date): Promise<void> {
    const reason = await markFailed(this.resources, resource, err, {
      plural,
      started,
      otherwise: 'BackupFailed',
    });
    this.log.warn(`backup failed: ${err instanceof Error ? err.message : String(err)}`, {
      namespace: resource.metadata.namespace,
      name: resource.metadata.name,
      reason,
    });
  }
}
