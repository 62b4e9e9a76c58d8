// `lc2-backup worker …`: what runs inside Kubernetes Jobs.
// - `backup` / `restore`: one request's data-moving step (executor: job).
// - `fire-schedule`: the Job of a BackupSchedule's CronJob creates one BackupRequest from the
//   schedule's template (named <project>-<environment>-backup-<UTC timestamp>, labelled with the
//   schedule), so the controller takes it from there.
import { BackupSchedule } from '../../../api/v1alpha1/backupSchedule.ts';
import { apiVersion } from '../../../api/v1alpha1/common.ts';
import { validate } from '../../../api/v1alpha1/parse.ts';
import { httpCode, KubeClient } from '../../kube/client.ts';
import { customPath } from '../../kube/paths.ts';
import { scheduleLabel } from '../../controller/scheduleReconciler.ts';
import { backupTimestamp } from '../../format/layout.ts';
import { BackupReconciler } from '../../controller/backupReconciler.ts';
import { Resources } from '../../controller/resources.ts';
import { RestoreReconciler } from '../../controller/restoreReconciler.ts';
import { lineLogger } from '../../observability/logger.ts';
import { exitCodes } from '../errors.ts';
import { openSession, type GlobalOptions } from '../session.ts';

export interface FireScheduleOptions {
  namespace: string;
  schedule: string;
  /** The time the backup is for (default: now). */
  now?: Date;
}

export async function fireScheduleCommand(options: FireScheduleOptions): Promise<number> {
  const kube = KubeClient.load();
  try {
    return await fireSchedule(kube, options);
  } finally {
    kube.close();
  }
}

async function fireSchedule(kube: KubeClient, options: FireScheduleOptions): Promise<number> {
  const { namespace } = options;
  const ref = `BackupSchedule ${namespace}/${options.schedule}`;
  const found = await kube.get(customPath('backupschedules', namespace, options.schedule));
  if (found === undefined) {
    process.stderr.write(
      `lc2-backup worker: ${ref} does not exist (deleted since the CronJob fired); nothing to do\n`,
    );
    return exitCodes.ok;
  }
  const schedule = validate(BackupSchedule, { ...(found as object), status: undefined }, ref);
  if (schedule.spec.suspend) {
    process.stderr.write(`lc2-backup worker: ${ref} is suspended; no backup started\n`);
    return exitCodes.ok;
  }
  const { projectId, environment } = schedule.spec.template.spec;
  const name = `${projectId}-${environment}-backup-${backupTimestamp(options.now ?? new Date())}`;
  const body = {
    apiVersion,
    kind: 'BackupRequest',
    metadata: {
      name,
      namespace,
      labels: {
        [scheduleLabel]: options.schedule,
        'backup.liferay.cloud/project': projectId,
        'backup.liferay.cloud/environment': environment,
      },
    },
    spec: schedule.spec.template.spec,
  };
  try {
    await kube.request('POST', customPath('backuprequests', namespace), { body });
  } catch (err) {
    // a retried Job in the same second finds its own request: done
    if (httpCode(err) !== 409) throw err;
    process.stderr.write(
      `lc2-backup worker: BackupRequest ${namespace}/${name} exists already; not creating it again\n`,
    );
    return exitCodes.ok;
  }
  process.stdout.write(`created BackupRequest ${namespace}/${name} from ${ref}\n`);
  return exitCodes.ok;
}

export interface WorkOptions extends GlobalOptions {
  namespace: string;
  name: string;
}

/**
 * `worker backup|restore`: runs one request's data-moving step in this process (a Job of
 * `executor: job`), writing progress and the final status to the request. Exit 0 once the
 * request is finished either way (its status says how); non-zero only when the worker could not
 * finish it (the Job's backoff then runs it again, adopting the finished steps).
 */
export async function workCommand(
  kind: 'backup' | 'restore',
  options: WorkOptions,
  signal: AbortSignal,
): Promise<number> {
  const session = await openSession({ ...options, quiet: true }, signal);
  const kube = KubeClient.load();
  const resources = new Resources(kube);
  const engine = {
    ...session.ctx,
    log: lineLogger((line) => process.stderr.write(line)),
    onProgress: undefined,
    tolerateCatalogOutage: true,
    initiator: 'controller',
  };
  try {
    const reconciler =
      kind === 'backup' ? new BackupReconciler(resources, engine) : new RestoreReconciler(resources, engine);
    const state = await reconciler.work(options.namespace, options.name);
    const ref = `${kind === 'backup' ? 'BackupRequest' : 'RestoreRequest'} ${options.namespace}/${options.name}`;
    if (state === undefined) {
      process.stderr.write(`lc2-backup worker: ${ref} does not exist; nothing to do\n`);
      return exitCodes.ok;
    }
    process.stderr.write(`lc2-backup worker: ${ref} is ${state}\n`);
    return state === 'Succeeded' || state === 'Failed' ? exitCodes.ok : exitCodes.failure;
  } finally {
    await resources.flushEvents();
    kube.close();
    await session.close();
  }
}
