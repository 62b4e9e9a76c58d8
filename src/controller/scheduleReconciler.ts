// BackupSchedule → a Kubernetes CronJob whose Job runs `lc2-backup worker fire-schedule`, which
// creates a BackupRequest from the template. The CronJob lives in the controller's namespace
// (where the worker's ServiceAccount is; an owner reference cannot cross namespaces), so the
// schedule carries the finalizer and its deletion removes the CronJob.
// Kubernetes does the timing (schedule, time zone, suspend, concurrencyPolicy Forbid, missed
// runs); this reconciler keeps the CronJob in step with the spec, reports the schedule's
// status from its requests, and keeps only the newest finished requests of the schedule in the
// API server (like a CronJob's history limits; the catalog keeps them all).
import { createHash } from 'node:crypto';
import { BackupSchedule } from '../../api/v1alpha1/backupSchedule.ts';
import { validate } from '../../api/v1alpha1/parse.ts';
import type { Config } from '../config/config.ts';
import type { Logger } from '../observability/logger.ts';
import { httpCode, type KubeClient } from '../kube/client.ts';
import { cronJobPath } from '../kube/paths.ts';
import type { ObjectMeta } from '../kube/types.ts';
import { finalizer, type Requeue } from './lifecycle.ts';
import { failureReason, readyCondition } from './requestStatus.ts';
import type { Resource, Resources } from './resources.ts';
import { requireProjectNamespace } from './tenancy.ts';

export const scheduleLabel = 'backup.liferay.cloud/schedule';
const plural = 'backupschedules';

export const scheduleNamespaceLabel = 'backup.liferay.cloud/schedule-namespace';

/**
 * CronJob names are at most 52 characters (the Job controller appends a suffix); the hash keeps
 * schedules of the same name in different namespaces apart.
 */
export function cronJobName(namespace: string, schedule: string): string {
  const hash = createHash('sha256').update(`${namespace}/${schedule}`).digest('hex').slice(0, 8);
  return `${`lc2-${schedule}`.slice(0, 52 - 9).replace(/[-.]+$/, '')}-${hash}`;
}

/** The fields of a CronJob this reconciler reads; the rest is written as built. */
interface CronJobSpec {
  schedule: string;
  timeZone?: string;
  suspend?: boolean;
  jobTemplate: {
    spec?: {
      template: {
        spec?: {
          serviceAccountName?: string;
          containers: { image?: string; command?: string[]; [key: string]: unknown }[];
          [key: string]: unknown;
        };
        [key: string]: unknown;
      };
      [key: string]: unknown;
    };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

interface CronJob {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: CronJobSpec;
  status?: { lastScheduleTime?: string };
}

function cronJobSpec(schedule: BackupSchedule, config: Config): CronJobSpec {
  const { job } = config.controller;
  const { name = '', namespace = '' } = schedule.metadata;
  return {
    schedule: schedule.spec.schedule,
    ...(schedule.spec.timeZone === undefined ? {} : { timeZone: schedule.spec.timeZone }),
    suspend: schedule.spec.suspend,
    concurrencyPolicy: 'Forbid',
    startingDeadlineSeconds: 300,
    successfulJobsHistoryLimit: 1,
    failedJobsHistoryLimit: 1,
    jobTemplate: {
      metadata: { labels: { [scheduleLabel]: name, [scheduleNamespaceLabel]: namespace } },
      spec: {
        backoffLimit: 2,
        activeDeadlineSeconds: 600,
        ttlSecondsAfterFinished: 3600,
        template: {
          metadata: {
            labels: {
              ...job.podLabels,
              [scheduleLabel]: name,
              [scheduleNamespaceLabel]: namespace,
              'app.kubernetes.io/name': 'lc2-backup-worker',
            },
          },
          spec: {
            restartPolicy: 'Never',
            serviceAccountName: job.serviceAccountName,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              runAsGroup: 65532,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'fire',
                image: job.image,
                command: [
                  'lc2-backup',
                  'worker',
                  'fire-schedule',
                  '--namespace',
                  namespace,
                  '--schedule',
                  name,
                ],
                resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
                securityContext: {
                  runAsNonRoot: true,
                  readOnlyRootFilesystem: true,
                  allowPrivilegeEscalation: false,
                  capabilities: { drop: ['ALL'] },
                },
              },
            ],
          },
        },
      },
    },
  };
}

/** What of the CronJob the schedule decides; a difference means the CronJob is rewritten. */
function fingerprint(spec: CronJobSpec | undefined): string {
  const pod = spec?.jobTemplate.spec?.template.spec;
  const container = pod?.containers[0];
  return JSON.stringify([
    spec?.schedule,
    spec?.timeZone ?? null,
    spec?.suspend ?? false,
    container?.image,
    container?.command,
    pod?.serviceAccountName,
  ]);
}

export class ScheduleReconciler {
  private readonly resources: Resources;
  private readonly kube: KubeClient;
  private readonly config: Config;
  private readonly log: Logger;
  /** Removes a finished, archived request (the backups' lifecycle). */
  private readonly expire: (request: Resource) => Promise<boolean>;

  constructor(
    resources: Resources,
    kube: KubeClient,
    engine: { config: Config; log: Logger },
    expire: (request: Resource) => Promise<boolean>,
  ) {
    this.resources = resources;
    this.kube = kube;
    this.config = engine.config;
    this.log = engine.log;
    this.expire = expire;
  }

  async reconcile(key: string): Promise<Requeue> {
    const [namespace = '', name = ''] = key.split('/');
    const resource = await this.resources.read(plural, namespace, name);
    if (!resource) return undefined;
    if (resource.metadata.deletionTimestamp !== undefined) return this.finalize(resource);
    if (!(resource.metadata.finalizers ?? []).includes(finalizer)) {
      const finalizers = [...(resource.metadata.finalizers ?? []), finalizer];
      if (!(await this.resources.patchMetadata(plural, resource, { finalizers })))
        return { requeueAfterMs: 0 };
    }
    let schedule: BackupSchedule;
    try {
      schedule = validate(BackupSchedule, { ...resource, status: undefined }, `BackupSchedule ${key}`);
      requireProjectNamespace(this.config, schedule.spec.template.spec.projectId, namespace);
    } catch (err) {
      const reason = failureReason(err, 'InvalidSchedule');
      const message = err instanceof Error ? err.message : String(err);
      await this.setStatus(resource, {
        conditions: [readyCondition('False', reason, message, resource.metadata.generation)],
      });
      this.resources.event(resource, 'Warning', reason, message);
      return undefined;
    }
    const cronJob = await this.ensureCronJob(resource, schedule);
    const requests = await this.resources.list('backuprequests', namespace, { [scheduleLabel]: name });
    await this.trimHistory(requests, schedule);
    await this.report(resource, schedule, cronJob, requests);
    // the status follows the schedule's requests and the CronJob: look again in a while
    return { requeueAfterMs: 30_000 };
  }

  private async report(
    resource: Resource,
    schedule: BackupSchedule,
    cronJob: CronJob,
    requests: Resource[],
  ): Promise<void> {
    const newest = requests
      .filter((r) => r.status?.state === 'Succeeded')
      .sort((a, b) => String(b.status?.completionTime).localeCompare(String(a.status?.completionTime)))[0];
    const lastSchedule = cronJob.status?.lastScheduleTime;
    await this.setStatus(resource, {
      cronJob: cronJob.metadata.name,
      ...(lastSchedule === undefined ? {} : { lastScheduleTime: new Date(lastSchedule).toISOString() }),
      ...(newest === undefined
        ? {}
        : { lastSuccessfulTime: newest.status?.completionTime, lastBackupId: newest.status?.backupId }),
      conditions: [
        readyCondition(
          'True',
          schedule.spec.suspend ? 'Suspended' : 'Scheduled',
          schedule.spec.suspend
            ? 'suspended: no backups are started'
            : `backs up on "${schedule.spec.schedule}"${schedule.spec.timeZone === undefined ? ' (UTC)' : ` (${schedule.spec.timeZone})`}`,
          resource.metadata.generation,
        ),
      ],
    });
  }

  /** A deleted schedule: its CronJob goes (its Jobs with it), then the finalizer. */
  private async finalize(resource: Resource): Promise<Requeue> {
    const finalizers = resource.metadata.finalizers ?? [];
    if (!finalizers.includes(finalizer)) return undefined;
    const { namespace, name } = resource.metadata;
    const cronName = cronJobName(namespace, name);
    try {
      await this.kube.request('DELETE', cronJobPath(this.config.controller.namespace, cronName), {
        body: { propagationPolicy: 'Background' },
      });
      this.log.info(
        `deleted CronJob ${this.config.controller.namespace}/${cronName} of BackupSchedule ${namespace}/${name}`,
      );
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
    }
    const left = finalizers.filter((f) => f !== finalizer);
    return (await this.resources.patchMetadata(plural, resource, { finalizers: left }))
      ? undefined
      : { requeueAfterMs: 0 };
  }

  private async ensureCronJob(resource: Resource, schedule: BackupSchedule): Promise<CronJob> {
    const { name } = resource.metadata;
    const namespace = this.config.controller.namespace;
    const cronName = cronJobName(resource.metadata.namespace, name);
    const spec = cronJobSpec(schedule, this.config);
    const body: CronJob = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: {
        name: cronName,
        namespace,
        labels: {
          [scheduleLabel]: name,
          [scheduleNamespaceLabel]: resource.metadata.namespace,
          'app.kubernetes.io/managed-by': 'lc2-backup',
        },
      },
      spec,
    };
    const current = await this.kube.get<CronJob>(cronJobPath(namespace, cronName));
    if (current === undefined) {
      const created = await this.kube.request<CronJob>('POST', cronJobPath(namespace), { body });
      this.log.info(`created CronJob ${namespace}/${cronName} for BackupSchedule ${name}`);
      this.resources.event(
        resource,
        'Normal',
        'CronJobCreated',
        `CronJob ${cronName} fires "${schedule.spec.schedule}"`,
      );
      return created;
    }
    if (fingerprint(current.spec) === fingerprint(spec)) return current;
    const replaced = await this.kube.request<CronJob>('PUT', cronJobPath(namespace, cronName), {
      body: {
        apiVersion: body.apiVersion,
        kind: body.kind,
        metadata: {
          name: cronName,
          namespace,
          labels: body.metadata.labels,
          resourceVersion: current.metadata.resourceVersion,
        },
        spec,
      },
    });
    this.log.info(`updated CronJob ${namespace}/${cronName} for BackupSchedule ${name}`);
    this.resources.event(
      resource,
      'Normal',
      'CronJobUpdated',
      `CronJob ${cronName} now fires "${schedule.spec.schedule}"${schedule.spec.suspend ? ' (suspended)' : ''}`,
    );
    return replaced;
  }

  /** Keeps the newest N succeeded and M failed requests of the schedule; older archived ones go. */
  private async trimHistory(requests: Resource[], schedule: BackupSchedule): Promise<void> {
    const newestFirst = (a: Resource, b: Resource): number =>
      (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '');
    const limits = {
      Succeeded: schedule.spec.successfulHistoryLimit,
      Failed: schedule.spec.failedHistoryLimit,
    };
    for (const [state, keep] of Object.entries(limits)) {
      const old = requests
        .filter((r) => r.status?.state === state)
        .sort(newestFirst)
        .slice(keep);
      for (const r of old) await this.expire(r);
    }
  }

  private async setStatus(resource: Resource, status: Record<string, unknown>): Promise<void> {
    // conditions compare by reason and message: a new lastTransitionTime alone is no change
    const comparable = (value: Record<string, unknown>): string =>
      JSON.stringify(
        Object.keys(status).map((k) =>
          k === 'conditions'
            ? (value.conditions as { reason?: string; message?: string }[] | undefined)?.map((c) => [
                c.reason,
                c.message,
              ])
            : value[k],
        ),
      );
    await this.resources.updateStatus(plural, resource.metadata, (current) => {
      if (comparable(current.status ?? {}) === comparable(status)) return undefined;
      return { ...status, observedGeneration: resource.metadata.generation };
    });
  }
}
