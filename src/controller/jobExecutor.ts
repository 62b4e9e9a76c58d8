// `executor: job`: a request's data moves in a Kubernetes Job of the controller's own image
// (`lc2-backup worker backup|restore --namespace … --name …`), with resource requests, a
// deadline and a backoff limit. The worker runs the same reconciler step as the in-process
// executor (progress and the final status are written by the worker); the controller waits for
// the Job and, when it ends without a final status (crash, OOM kill, deadline), fails the request
// with the Job's reason and the tail of its log. The Job's name derives from the request, so a
// restarted controller adopts a Job already running instead of starting a second one. Jobs run
// in the controller's own namespace (controller.namespace), where the worker's ServiceAccount,
// configuration and Secret live; tenants' namespaces hold only their requests.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/config.ts';
import { durationMs } from '../config/config.ts';
import { httpCode, type KubeClient } from '../kube/client.ts';
import { jobPath, podPath } from '../kube/paths.ts';
import type { ObjectMeta } from '../kube/types.ts';
import type { Logger } from '../observability/logger.ts';
import { terminalStates, type Resource, type Resources } from './resources.ts';

export type WorkKind = 'backup' | 'restore';

export const requestLabel = 'backup.liferay.cloud/request';
export const requestNamespaceLabel = 'backup.liferay.cloud/request-namespace';

/** Job names are at most 63 characters; the hash keeps names of long requests apart. */
export function jobName(kind: WorkKind, resource: Resource): string {
  const { namespace, name, uid = '' } = resource.metadata;
  const hash = createHash('sha256').update(`${namespace}/${name}/${uid}`).digest('hex').slice(0, 8);
  const stem = `lc2-${kind}-${name}`.slice(0, 63 - 9).replace(/[-.]+$/, '');
  return `${stem}-${hash}`;
}

/** The worker Job ended without writing the request's result. */
export class JobFailedError extends Error {
  override name = 'JobFailedError';
}

export interface JobOutcome {
  succeeded: boolean;
  /** Why the Job failed (its condition) and the tail of the worker's output. */
  message?: string;
}

/**
 * The request as a worker Job left it: `finished` when the worker wrote its result, else the
 * error to fail it with (the Job's reason and output tail); undefined when the request is gone.
 */
export async function afterJob(
  resources: Resources,
  plural: string,
  resource: Resource,
  outcome: JobOutcome,
): Promise<
  { after: Resource; finished: true } | { after: Resource; finished: false; error: Error } | undefined
> {
  const { namespace, name } = resource.metadata;
  const after = await resources.get(plural, namespace, name);
  if (after === undefined) return undefined;
  if (terminalStates.has(after.status?.state ?? '')) return { after, finished: true };
  const message = outcome.succeeded
    ? 'the worker Job completed without reporting a result'
    : (outcome.message ?? 'the worker Job failed');
  return { after, finished: false, error: new JobFailedError(message) };
}

interface Job {
  metadata: ObjectMeta;
  spec?: unknown;
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

interface Pod {
  metadata: ObjectMeta;
  status?: { containerStatuses?: { state?: { terminated?: { message?: string } } }[] };
}

function jobSpec(
  kind: WorkKind,
  resource: Resource,
  config: Config,
): Job & { apiVersion: string; kind: string } {
  const settings = config.controller.job;
  const { namespace, name } = resource.metadata;
  const labels = { [requestLabel]: name, [requestNamespaceLabel]: namespace };
  const configMount =
    settings.configMap === undefined ? [] : [{ name: 'config', mountPath: '/etc/lc2-backup' }];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: jobName(kind, resource),
      namespace: config.controller.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'lc2-backup', ...labels },
    },
    spec: {
      backoffLimit: settings.backoffLimit,
      activeDeadlineSeconds: Math.ceil(durationMs(settings.deadline) / 1000),
      ttlSecondsAfterFinished: 3600,
      template: {
        metadata: {
          labels: { ...settings.podLabels, ...labels, 'app.kubernetes.io/name': 'lc2-backup-worker' },
        },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: settings.serviceAccountName,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'worker',
              image: settings.image,
              command: ['lc2-backup', 'worker', kind, '--namespace', namespace, '--name', name],
              env:
                settings.configMap === undefined
                  ? []
                  : [{ name: 'LC2_CONFIG', value: '/etc/lc2-backup/config.yaml' }],
              ...(settings.secretName === undefined
                ? {}
                : { envFrom: [{ secretRef: { name: settings.secretName } }] }),
              resources: {
                requests: { cpu: settings.cpu, memory: settings.memory },
                limits: { memory: settings.memory },
              },
              // the kubelet puts the tail of the output into the Pod's status when the worker fails
              terminationMessagePolicy: 'FallbackToLogsOnError',
              securityContext: {
                runAsNonRoot: true,
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [...configMount, { name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [
            ...(settings.configMap === undefined
              ? []
              : [{ name: 'config', configMap: { name: settings.configMap } }]),
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };
}

export class JobExecutor {
  private readonly kube: KubeClient;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly pollMs: number;

  constructor(kube: KubeClient, engine: { config: Config; log: Logger }, pollMs = 1000) {
    this.kube = kube;
    this.config = engine.config;
    this.log = engine.log;
    this.pollMs = pollMs;
  }

  /** Starts (or adopts) the request's Job and waits until it ends. */
  async run(kind: WorkKind, resource: Resource, signal?: AbortSignal): Promise<JobOutcome> {
    const body = jobSpec(kind, resource, this.config);
    const { name } = body.metadata;
    const namespace = this.config.controller.namespace;
    try {
      await this.kube.request('POST', jobPath(namespace), { body });
      this.log.info(`started Job ${namespace}/${name}`, {
        namespace: resource.metadata.namespace,
        name: resource.metadata.name,
      });
    } catch (err) {
      if (httpCode(err) !== 409) throw err;
      this.log.info(`adopted the running Job ${namespace}/${name}`, {
        namespace: resource.metadata.namespace,
        name: resource.metadata.name,
      });
    }
    return this.waitFor(namespace, name, signal);
  }

  private async waitFor(namespace: string, name: string, signal?: AbortSignal): Promise<JobOutcome> {
    for (;;) {
      const job = await this.kube.get<Job>(jobPath(namespace, name));
      if (job === undefined)
        return { succeeded: false, message: `Job ${name} was deleted before it finished` };
      const ended = job.status?.conditions?.find(
        (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
      );
      if (ended?.type === 'Complete') return { succeeded: true };
      if (ended?.type === 'Failed') {
        const tail = await this.logTail(namespace, name);
        const why = `Job ${name} failed (${ended.reason ?? 'Failed'}: ${ended.message ?? 'no message'})`;
        return { succeeded: false, message: tail === undefined ? why : `${why}; last output:\n${tail}` };
      }
      await sleep(this.pollMs, undefined, signal === undefined ? {} : { signal });
    }
  }

  /** The tail of the newest failed worker's output, from its Pod's termination message. */
  private async logTail(namespace: string, job: string): Promise<string | undefined> {
    const pods = await this.kube.request<{ items: Pod[] }>('GET', podPath(namespace), {
      query: { labelSelector: `job-name=${job}` },
    });
    const messages = pods.items
      .sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''))
      .map((p) => p.status?.containerStatuses?.[0]?.state?.terminated?.message)
      .filter((m): m is string => m !== undefined && m !== '');
    return messages[0]?.split('\n').slice(-20).join('\n').slice(-2000);
  }
}
