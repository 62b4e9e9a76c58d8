// The controller: one list+watch informer per kind feeds a keyed work queue; each key
// (`<plural>/<namespace>/<name>`) is reconciled by its kind's reconciler. Informers re-list
// when their watch expires (client-node's ListWatch resumes from the last resourceVersion and
// re-lists on 410 Gone) and are restarted after an error.
import {
  CustomObjectsApi,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { group, version } from '../../api/v1alpha1/common.ts';
import type { EngineContext } from '../engine/context.ts';
import { BackupReconciler } from './backupReconciler.ts';
import { WorkQueue } from './queue.ts';
import { Resources } from './resources.ts';
import { RestoreReconciler } from './restoreReconciler.ts';

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  engine: EngineContext;
  /** Requests in flight at once across all projects. */
  concurrency?: number;
  progressIntervalMs?: number;
}

type Reconciler = (key: string) => Promise<undefined>;

export class Controller {
  private readonly queue: WorkQueue;
  private readonly informers: Informer<KubernetesObject>[] = [];
  private readonly options: ControllerOptions;
  private stopped = false;

  constructor(options: ControllerOptions) {
    this.options = options;
    const resources = new Resources(options.kubeConfig);
    const settings = { progressIntervalMs: options.progressIntervalMs };
    const backups = new BackupReconciler(resources, options.engine, settings);
    const restores = new RestoreReconciler(resources, options.engine, settings);
    const reconcilers: Record<string, Reconciler> = {
      backuprequests: (key) => backups.reconcile(key),
      restorerequests: (key) => restores.reconcile(key),
    };
    this.queue = new WorkQueue(
      (key) => {
        const slash = key.indexOf('/');
        const reconcile = reconcilers[key.slice(0, slash)];
        return reconcile ? reconcile(key.slice(slash + 1)) : Promise.resolve(undefined);
      },
      {
        concurrency: options.concurrency ?? 4,
        onError: (key, err, delay) => {
          options.engine.log.warn(`reconcile ${key} failed; retrying in ${delay} ms: ${String(err)}`);
        },
      },
    );
    for (const plural of Object.keys(reconcilers)) this.informers.push(this.watch(plural));
  }

  private watch(plural: string): Informer<KubernetesObject> {
    const custom = this.options.kubeConfig.makeApiClient(CustomObjectsApi);
    const informer = makeInformer(
      this.options.kubeConfig,
      `/apis/${group}/${version}/${plural}`,
      () => custom.listClusterCustomObject({ group, version, plural }) as never,
    );
    const enqueue = (obj: KubernetesObject): void => {
      this.queue.add(`${plural}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`);
    };
    informer.on('add', enqueue);
    informer.on('update', enqueue);
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.options.engine.log.warn(`watch of ${plural} failed; restarting it: ${String(err)}`);
      setTimeout(() => {
        if (!this.stopped) void informer.start();
      }, 1000).unref();
    });
    return informer;
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.start()));
    this.options.engine.log.info('controller started: watching backuprequests and restorerequests');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.queue.stop();
  }
}
