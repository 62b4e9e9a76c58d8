// The controller: list+watch informers feed a keyed work queue; each key is reconciled by the
// reconciler of its kind. Informers re-list when their watch expires (client-node's ListWatch
// resumes from the last resourceVersion and re-lists on 410 Gone).
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

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  engine: EngineContext;
  /** Backups in flight at once across all projects. */
  concurrency?: number;
  progressIntervalMs?: number;
}

export class Controller {
  private readonly queue: WorkQueue;
  private readonly informer: Informer<KubernetesObject>;
  private readonly options: ControllerOptions;
  private stopped = false;

  constructor(options: ControllerOptions) {
    this.options = options;
    const resources = new Resources(options.kubeConfig);
    const backups = new BackupReconciler(resources, options.engine, {
      progressIntervalMs: options.progressIntervalMs,
    });
    this.queue = new WorkQueue((key) => backups.reconcile(key), {
      concurrency: options.concurrency ?? 4,
      onError: (key, err, delay) => {
        options.engine.log.warn(`reconcile ${key} failed; retrying in ${delay} ms: ${String(err)}`);
      },
    });
    const custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.informer = makeInformer(
      options.kubeConfig,
      `/apis/${group}/${version}/backuprequests`,
      () => custom.listClusterCustomObject({ group, version, plural: 'backuprequests' }) as never,
    );
    const enqueue = (obj: KubernetesObject): void => {
      this.queue.add(`${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`);
    };
    this.informer.on('add', enqueue);
    this.informer.on('update', enqueue);
    this.informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      options.engine.log.warn(`watch of backuprequests failed; restarting it: ${String(err)}`);
      setTimeout(() => {
        if (!this.stopped) void this.informer.start();
      }, 1000).unref();
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
    this.options.engine.log.info('controller started: watching backuprequests');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
    await this.queue.stop();
  }
}
