// BackupRequest: Pending → InProgress (database, then document library, then manifest, then
// catalog) → Succeeded | Failed. A chain of early returns; terminal states are never touched
// again. Crash safety comes from the engine: the backup id is derived from the request, so a
// request found InProgress after a restart is run again and adopts whatever already finished.
import { BackupRequest } from '../../api/v1alpha1/backupRequest.ts';
import { validate } from '../../api/v1alpha1/parse.ts';
import { runBackup, type BackupResult } from '../engine/backup/backup.ts';
import { deleteBackup } from '../engine/backup/delete.ts';
import { archiveBackup } from '../engine/history.ts';
import { humanBytes, type EngineContext } from '../engine/context.ts';
import { humanDuration } from '../engine/units.ts';
import { backupIdentity } from '../format/layout.ts';
import type { Logger } from '../observability/logger.ts';
import { markFailed, progressWriter, readyCondition } from './requestStatus.ts';
import { requireProjectNamespace } from './tenancy.ts';
import { ParsedSpecs } from './parsedSpecs.ts';
import { afterJob, type JobExecutor } from './jobExecutor.ts';
import {
  requestLifecycle,
  type Lifecycle,
  type RequestReconcilerOptions,
  type Requeue,
} from './lifecycle.ts';
import { reportBackup, reportFinished, requestLogger } from './observe.ts';
import type { Metrics } from '../observability/metrics.ts';
import { withSpan } from '../observability/tracing.ts';
import type { Priority } from '../kube/scheduler.ts';
import { terminalStates, type Resource, type Resources } from './resources.ts';
import type { GlobalLimit, ProjectSlots, SlotClaim, SlotDecision } from './slots.ts';

/**
 * Per-project concurrency: the slots, each project's limit, and its waiting requests in order
 * (every project's without one); then the global limit, counted over all projects' slots.
 */
export interface SlotPolicy {
  manager: ProjectSlots;
  limitFor: (project: string) => number;
  waiting: (project: string) => string[];
  /** 1-based place of a waiting request (namespace/name) among every project's. */
  placeInLine: (key: string) => number;
  global?: GlobalLimit;
  /** Called when this process freed a slot of `project`: wake the requests next in line. */
  wake?: (project: string) => void;
}

/** How soon a waiting request looks again by itself (a freed slot wakes it earlier). */
const recheckMs = 10_000;
/** A changed place in line is written at most this often (each write is an API call). */
const positionWriteMs = 5_000;

/** A slot lost to a race is looked for again within a second or two; a full pool at the recheck. */
function recheckAfter(decision: SlotDecision): number {
  return decision.contended === true ? 500 + Math.floor(Math.random() * 1000) : recheckMs;
}

/** A request's turn at the slots (BackupReconciler.turn). */
type Turn =
  | { kind: 'held' }
  | { kind: 'claimed'; claim: SlotClaim; place: { release: () => void } | undefined }
  | { kind: 'wait'; pool: string; decision: SlotDecision };

export interface BackupReconcilerOptions extends RequestReconcilerOptions {
  slots?: SlotPolicy;
  /**
   * A run that took its slots goes on beside the work queue (a reconcile never waits for a
   * backup); told when it ended, with its error if it failed to complete, so the key is looked
   * at again.
   */
  onRunEnd?: (key: string, err?: unknown) => void;
}

const plural = 'backuprequests';

/**
 * A request with no status yet. Its first answer is what it waits for, so the calls that give it
 * go at high priority (src/kube/scheduler.ts), before the hand-offs and bookkeeping of requests
 * already answered: the InProgress status of one that finds a slot free, or the WaitingForSlot
 * status of one that must wait. The Lease take after a new request's InProgress goes at urgent:
 * it already waited its turn once and must not queue again behind the first answers that came in
 * meanwhile (its backup starts only once the Lease is written). A new place in line goes at low.
 */
function isNew(resource: Resource): boolean {
  return resource.status?.state === undefined;
}

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
  private readonly executor: JobExecutor | undefined;
  private readonly metrics: Metrics | undefined;
  /** Backups running in this process, by namespace/name (they hold their slots). */
  private readonly runs = new Map<string, Promise<void>>();
  private readonly onRunEnd: ((key: string, err?: unknown) => void) | undefined;
  /** When this process last wrote a request's place in line (namespace/name → ms). */
  private readonly waitWrites = new Map<string, number>();
  /** Each unfinished request's parsed spec, while its generation is unchanged. */
  private readonly specs = new ParsedSpecs(BackupRequest, 'BackupRequest');
  readonly lifecycle: Lifecycle;

  constructor(resources: Resources, engine: EngineContext, options: BackupReconcilerOptions = {}) {
    this.resources = resources;
    this.engine = engine;
    this.log = engine.log;
    this.progressIntervalMs = options.progressIntervalMs ?? 2000;
    this.slots = options.slots;
    this.executor = options.executor;
    this.metrics = options.metrics;
    this.onRunEnd = options.onRunEnd;
    this.lifecycle = requestLifecycle(
      resources,
      {
        plural,
        archive: (resource) => this.archive(resource),
        onDelete: (resource) => this.removeStoredBackup(resource),
      },
      options,
      engine.log,
    );
  }

  /** The request (namespace/name) was deleted: what this process kept for it goes too. */
  gone(key: string): void {
    this.waitWrites.delete(key);
    this.specs.forget(key);
  }

  async reconcile(key: string): Promise<Requeue> {
    // a running backup is looked at again when it ends (onRunEnd)
    if (this.runs.has(key)) return undefined;
    const [namespace = '', name = ''] = key.split('/');
    const resource = await this.resources.read(plural, namespace, name);
    if (!resource || resource.metadata.deletionTimestamp !== undefined) this.gone(key);
    if (!resource) return undefined;
    if (resource.metadata.deletionTimestamp !== undefined) return this.lifecycle.finalize(resource);
    if (terminalStates.has(resource.status?.state ?? '')) {
      this.specs.forget(key);
      return this.lifecycle.finished(resource);
    }
    let request: BackupRequest;
    try {
      request = this.specs.parse(key, resource);
      requireProjectNamespace(this.engine.config, request.spec.projectId, namespace);
    } catch (err) {
      await this.fail(resource, err);
      return undefined;
    }
    if (!this.slots) {
      await this.run(resource, request);
      return undefined;
    }
    return this.runInSlot(resource, request, this.slots);
  }

  private async runInSlot(resource: Resource, request: BackupRequest, slots: SlotPolicy): Promise<Requeue> {
    const key = `${resource.metadata.namespace}/${resource.metadata.name}`;
    const project = request.spec.projectId;
    const waiting = slots.waiting(project);
    const turn = await this.turn(key, project, slots, waiting);
    this.metrics?.setQueueDepth(project, Math.max(0, waiting.length - (turn.kind === 'wait' ? 0 : 1)));
    if (turn.kind === 'wait') {
      await this.waitForSlot(resource, turn.pool, turn.decision);
      return { requeueAfterMs: recheckAfter(turn.decision) };
    }
    let started: Resource | undefined;
    if (turn.kind === 'claimed') {
      const taken = await this.startInClaimed(resource, request, turn);
      if (taken === undefined) return undefined;
      if (!taken.decision.acquired) {
        // the take lost to a view that was stale (a Lease this process had not seen): the request
        // goes back to waiting, its InProgress not followed by any work
        this.resources.event(
          taken.started,
          'Normal',
          'SlotTaken',
          `the free slot of project ${project} was taken by another writer before this request's; waiting again`,
        );
        await this.waitForSlot(taken.started, `project ${project}'s`, taken.decision);
        return { requeueAfterMs: recheckAfter(taken.decision) };
      }
      started = taken.started;
    }
    const running = this.runHeld(started ?? resource, request, slots, started !== undefined).then(
      () => {
        this.runs.delete(key);
        this.onRunEnd?.(key);
      },
      (err: unknown) => {
        this.runs.delete(key);
        this.onRunEnd?.(key, err);
      },
    );
    this.runs.set(key, running);
    return undefined;
  }

  /**
   * A request whose slot is claimed: its InProgress status first, then the Lease take. A new
   * request's first answer is then one call, as a waiting one's is (its WaitingForSlot), instead
   * of a Lease take followed by the status. The claim keeps every other take of this process off
   * the slot meanwhile, and the take is conditional on the Lease as read, so the limit holds;
   * undefined when the request went away or finished before its status was written.
   */
  private async startInClaimed(
    resource: Resource,
    request: BackupRequest,
    turn: Extract<Turn, { kind: 'claimed' }>,
  ): Promise<{ started: Resource; decision: SlotDecision } | undefined> {
    const fresh = isNew(resource);
    let started: Resource | undefined;
    try {
      started = await this.start(resource, request, fresh ? 'high' : 'normal');
      if (started === undefined) return undefined;
      // at urgent for a new request: it waited its turn in the client queue once already
      return { started, decision: await turn.claim.take(fresh ? 'urgent' : 'normal') };
    } catch (err) {
      if (started !== undefined) await this.takeFailed(started, request.spec.projectId, err);
      throw err;
    } finally {
      turn.claim.cancel();
      turn.place?.release();
    }
  }

  /**
   * The Lease take failed with an error (not lost to another taker) after the InProgress status
   * was written: nothing started, so the request goes back to Pending, saying why (a Warning
   * Event too), and the work queue's retry starts it again — as a start, not as a run resumed
   * after a restart. If this write fails as well, the retry finds it InProgress and resumes it.
   */
  private async takeFailed(resource: Resource, project: string, err: unknown): Promise<void> {
    const generation = resource.metadata.generation;
    const why = err instanceof Error ? err.message : String(err);
    const message = `taking a slot of project ${project} failed, nothing was started; retrying: ${why}`;
    this.resources.event(resource, 'Warning', 'SlotTakeFailed', message);
    await this.resources
      .updateStatus(plural, resource.metadata, (current) =>
        current.status?.state === 'InProgress'
          ? {
              state: 'Pending',
              reason: 'SlotTakeFailed',
              message,
              observedGeneration: generation,
              conditions: [readyCondition('False', 'SlotTakeFailed', message, generation)],
            }
          : undefined,
      )
      .catch(() => undefined);
  }

  /** Waits for the backups running in this process (a controller that stops lets them finish). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.runs.values()]);
  }

  /** A run that holds its slots; they are handed on when it ends. */
  private async runHeld(
    resource: Resource,
    request: BackupRequest,
    slots: SlotPolicy,
    started: boolean,
  ): Promise<void> {
    const key = `${resource.metadata.namespace}/${resource.metadata.name}`;
    const project = request.spec.projectId;
    let finished = false;
    try {
      await (started ? this.proceed(resource, request) : this.run(resource, request));
      finished = await this.finished(resource);
    } finally {
      // a slot whose holder has finished is free: the next taker's take-over is the only write;
      // a run that stopped unfinished (or failed to start) gives its slots back
      if (!finished) await this.releaseSlots(key, project, slots);
      // its own final status (read before the informer shows it) frees its place in the global
      // count; a run freed its slots: the requests next in line go now (not after their recheck)
      slots.global?.requestChanged(key);
      slots.wake?.(project);
    }
  }

  /**
   * The request's turn: a slot it holds already, a free one claimed for it (when the project's
   * line and the global limit let it go), or the pool it waits for. The global limit is a count
   * over every project's slots (GlobalLimit), so a start writes one Lease; its place is reserved
   * until that Lease is written.
   */
  private async turn(key: string, project: string, slots: SlotPolicy, waiting: string[]): Promise<Turn> {
    const limit = slots.limitFor(project);
    const pool = `project ${project}'s`;
    const ahead = await slots.manager.preview(project, limit, key, waiting);
    if (ahead !== undefined)
      return ahead.acquired ? { kind: 'held' } : { kind: 'wait', pool, decision: ahead };
    const { global } = slots;
    const place = global?.admit();
    if (global !== undefined && place === undefined) {
      const busy = global.limit;
      return {
        kind: 'wait',
        pool: 'the global',
        decision: { acquired: false, busy, limit: busy, position: Math.max(1, slots.placeInLine(key)) },
      };
    }
    let mine: SlotDecision | SlotClaim;
    try {
      mine = await slots.manager.claim(project, limit, key, waiting);
    } catch (err) {
      place?.release();
      throw err;
    }
    if ('take' in mine) return { kind: 'claimed', claim: mine, place };
    place?.release();
    return mine.acquired ? { kind: 'held' } : { kind: 'wait', pool, decision: mine };
  }

  private async releaseSlots(key: string, project: string, slots: SlotPolicy): Promise<void> {
    await slots.manager.release(project, slots.limitFor(project), key);
  }

  /** Whether the request is Succeeded or Failed, as this process last wrote or saw it. */
  private async finished(resource: Resource): Promise<boolean> {
    const { namespace, name } = resource.metadata;
    const now = await this.resources.read(plural, namespace, name).catch(() => undefined);
    return terminalStates.has(now?.status?.state ?? '');
  }

  /** The catalog row of a finished (or deleted unfinished) request. */
  private async archive(resource: Resource): Promise<void> {
    const status = resource.status ?? {};
    const request = this.parsed(resource);
    if (request === undefined || typeof status.backupId !== 'string') return;
    const started = typeof status.startTime === 'string' ? new Date(status.startTime) : new Date();
    const completed =
      typeof status.completionTime === 'string' ? new Date(status.completionTime) : new Date();
    await archiveBackup(this.engine, request, {
      state: status.state === 'Succeeded' ? 'Succeeded' : 'Failed',
      backupId: status.backupId,
      startTime: started,
      completionTime: completed,
      reason: terminalStates.has(status.state ?? '')
        ? typeof status.message === 'string'
          ? status.message
          : 'failed'
        : 'the BackupRequest was deleted before the backup finished',
    });
  }

  /** deletionPolicy: Delete removes the stored backup when the request is deleted. */
  private async removeStoredBackup(resource: Resource): Promise<void> {
    const request = this.parsed(resource);
    const { backupId, startTime } = resource.status ?? {};
    if (request?.spec.deletionPolicy !== 'Delete' || typeof backupId !== 'string') return;
    const started = typeof startTime === 'string' ? new Date(startTime) : new Date();
    const deleted = await deleteBackup(this.engine, request, started);
    this.log.info(`deleted the stored backup ${backupId} (deletionPolicy: Delete)`, {
      namespace: resource.metadata.namespace,
      name: resource.metadata.name,
      objects: deleted.removedObjects,
    });
  }

  private parsed(resource: Resource): BackupRequest | undefined {
    try {
      return validate(
        BackupRequest,
        { ...resource, status: undefined },
        `BackupRequest ${resource.metadata.name}`,
      );
    } catch {
      return undefined; // an invalid request never ran: nothing to record or remove
    }
  }

  private async waitForSlot(resource: Resource, pool: string, decision: SlotDecision): Promise<void> {
    const message = `waiting for a slot: all ${decision.limit} of ${pool} slots are taken; position ${decision.position ?? 1} in line`;
    const key = `${resource.metadata.namespace}/${resource.metadata.name}`;
    const lastWrite = this.waitWrites.get(key) ?? 0;
    const written = await this.resources.updateStatus(
      plural,
      resource.metadata,
      (current) => {
        const waitingAlready =
          current.status?.state === 'Pending' && current.status.reason === 'WaitingForSlot';
        if (waitingAlready && current.status?.message === message) return undefined;
        // a new place in line is shown, but not more often than every few seconds
        if (waitingAlready && Date.now() - lastWrite < positionWriteMs) return undefined;
        return {
          state: 'Pending',
          reason: 'WaitingForSlot',
          message,
          observedGeneration: resource.metadata.generation,
          conditions: [readyCondition('False', 'WaitingForSlot', message, resource.metadata.generation)],
        };
      },
      isNew(resource) ? 'high' : 'low',
    );
    if (written !== undefined) this.waitWrites.set(key, Date.now());
  }

  /** The backup's identity and start, the same in the controller and in a worker. */
  private identity(resource: Resource, request: BackupRequest): { backupId: string; started: Date } {
    const startTime = resource.status?.startTime;
    const started = typeof startTime === 'string' ? new Date(startTime) : new Date();
    const { backupId } = backupIdentity(
      request.spec.projectId,
      request.spec.environment,
      request.metadata,
      started,
    );
    return { backupId, started };
  }

  private async run(resource: Resource, request: BackupRequest): Promise<void> {
    const inProgress = await this.start(resource, request, isNew(resource) ? 'high' : 'normal');
    if (inProgress !== undefined) await this.proceed(inProgress, request);
  }

  /** Writes the request's InProgress status (its backup id and start); undefined if it went away. */
  private async start(
    resource: Resource,
    request: BackupRequest,
    priority: Priority,
  ): Promise<Resource | undefined> {
    const ref = resource.metadata;
    const generation = ref.generation;
    const { backupId, started } = this.identity(resource, request);
    const resumed = resource.status?.state === 'InProgress';
    this.waitWrites.delete(`${ref.namespace}/${ref.name}`);
    const inProgress = await this.resources.updateStatus(
      plural,
      ref,
      () => ({
        state: 'InProgress',
        backupId,
        reason: resumed ? 'Resumed' : 'Started',
        message: resumed
          ? 'the controller restarted; resuming (finished steps are adopted)'
          : 'backing up the database, then the document library',
        // a resumed run keeps the start time it had, as written
        startTime:
          typeof resource.status?.startTime === 'string' ? resource.status.startTime : started.toISOString(),
        observedGeneration: generation,
        conditions: [readyCondition('False', 'InProgress', 'backup running', generation)],
      }),
      priority,
    );
    // a start is in the status (reason Started, startTime); an Event only for a resumed run, which
    // the status alone does not tell apart afterwards: one API call per request less in a burst
    if (inProgress !== undefined && resumed)
      this.resources.event(resource, 'Normal', 'Resumed', `backup ${backupId} resumed`);
    if (inProgress !== undefined)
      this.log.info(`backup ${backupId} ${resumed ? 'resumed' : 'started'}`, {
        namespace: ref.namespace,
        name: ref.name,
      });
    return inProgress;
  }

  /** A started request (its InProgress written): the finalizer, then the backup. */
  private async proceed(inProgress: Resource, request: BackupRequest): Promise<void> {
    // the finalizer goes on once the backup starts (a waiting request has nothing to record or
    // remove), after the InProgress status so that a new request's first answer comes quickly
    if (!(await this.lifecycle.ensureFinalizer(inProgress))) return;
    const { backupId, started } = this.identity(inProgress, request);
    if (this.executor) await this.runAsJob(inProgress, this.executor, started);
    else await this.execute(inProgress, request, { backupId, started });
  }

  /** The data-moving step: in the controller, or in a worker Job (`lc2-backup worker backup`). */
  private async execute(
    resource: Resource,
    request: BackupRequest,
    run: { backupId: string; started: Date },
  ): Promise<void> {
    const ref = resource.metadata;
    const { backupId, started } = run;
    try {
      const onProgress = progressWriter(
        this.resources,
        { plural, resource, intervalMs: this.progressIntervalMs },
        this.log,
      );
      const result = await withSpan(
        'backup',
        {
          'lc2.backup_id': backupId,
          'lc2.project': request.spec.projectId,
          'k8s.namespace.name': ref.namespace,
        },
        () =>
          runBackup(
            {
              ...this.engine,
              onProgress,
              log: requestLogger(this.log, { namespace: ref.namespace, name: ref.name, backupId }),
            },
            request,
          ),
      );
      const written = await this.resources.updateStatus(plural, ref, () =>
        succeededStatus(result, started, ref.generation),
      );
      reportBackup(this.metrics, request.spec.projectId, result);
      if (written) reportFinished(this.metrics, 'backup', written);
      this.resources.event(
        resource,
        'Normal',
        'Completed',
        `backup ${backupId} succeeded: ${result.manifestPath}`,
      );
      this.log.info(`backup ${backupId} succeeded`, { namespace: ref.namespace, name: ref.name });
    } catch (err) {
      if (this.engine.signal?.aborted === true) {
        // this replica lost leadership (or is shutting down hard): the request stays InProgress
        // and the next leader resumes it, adopting what finished
        this.log.warn(`backup ${backupId} stopped: ${String(this.engine.signal.reason)}`, {
          namespace: ref.namespace,
          name: ref.name,
        });
        return;
      }
      await this.fail(resource, err, started);
    }
  }

  private async runAsJob(resource: Resource, executor: JobExecutor, started: Date): Promise<void> {
    const outcome = await executor.run('backup', resource, this.engine.signal);
    const ended = await afterJob(this.resources, plural, resource, outcome);
    if (ended?.finished === true) reportFinished(this.metrics, 'backup', ended.after);
    else if (ended !== undefined) await this.fail(ended.after, ended.error, started);
  }

  /** In a worker Job: runs the request's backup in this process and writes its final status. */
  async work(namespace: string, name: string): Promise<string | undefined> {
    const resource = await this.resources.get(plural, namespace, name);
    if (!resource || terminalStates.has(resource.status?.state ?? '')) return resource?.status?.state;
    const request = validate(
      BackupRequest,
      { ...resource, status: undefined },
      `BackupRequest ${namespace}/${name}`,
    );
    await this.execute(resource, request, this.identity(resource, request));
    return (await this.resources.get(plural, namespace, name))?.status?.state;
  }

  private async fail(resource: Resource, err: unknown, started?: Date): Promise<void> {
    const reason = await markFailed(this.resources, resource, err, {
      plural,
      started,
      otherwise: 'BackupFailed',
    });
    reportFinished(this.metrics, 'backup', { ...resource, status: { state: 'Failed', reason } });
    this.log.warn(`backup failed: ${err instanceof Error ? err.message : String(err)}`, {
      namespace: resource.metadata.namespace,
      name: resource.metadata.name,
      reason,
    });
  }
}
