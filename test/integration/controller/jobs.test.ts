// `executor: job` and BackupSchedule end to end through the real Job and CronJob controllers of
// kube-controller-manager, with the kubelet harness running each Pod's `lc2-backup worker …` as
// a local process: a BackupRequest and a RestoreRequest run in worker Jobs; a Job killed by its
// deadline fails its request with reason JobFailed and the tail of the worker's output; a
// BackupSchedule becomes a CronJob whose Job creates a BackupRequest that the controller runs.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCatalog, type Catalog } from '../../../src/catalog/catalog.ts';
import type { Config } from '../../../src/config/config.ts';
import { Controller } from '../../../src/controller/controller.ts';
import { requestLabel } from '../../../src/controller/jobExecutor.ts';
import { cronJobName, scheduleLabel } from '../../../src/controller/scheduleReconciler.ts';
import {
  installCrds,
  kubeClient,
  kubeConfig,
  testbed,
  useDatabase,
  useNamespace,
} from '../../env/fixtures.ts';
import { startKubelet, type Kubelet } from '../../env/kubelet.ts';
import { dropDatabase, dumpText, useApp } from '../engine/harness.ts';

const app = useApp({ objects: 300 });
const ns = useNamespace('jobs');
const catalogDb = useDatabase('jobs_catalog');
const kc = kubeConfig();
const custom = kc.makeApiClient(CustomObjectsApi);
const batch = kc.makeApiClient(BatchV1Api);
const group = 'backup.liferay.cloud';
const version = 'v1alpha1';
const root = join(import.meta.dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'lc2-jobs-'));
let catalog: Catalog;
let kubelet: Kubelet;
let controller: Controller | undefined;

type Status = Record<string, unknown> & { state?: string; reason?: string; message?: string };

function configWith(job: Partial<Config['controller']['job']>, catalogUrl?: string): Config {
  const retail = { ...app.config.projects.retail, namespaces: [ns.name] } as NonNullable<
    typeof app.config.projects.retail
  >;
  const { postgres } = testbed();
  return {
    ...app.config,
    catalog:
      catalogUrl ?? `postgresql://${postgres.user}@${postgres.host}:${postgres.port}/${catalogDb.name}`,
    catalogPassword: { env: 'LC2_TEST_CATALOG_PASSWORD' },
    projects: { ...app.config.projects, retail },
    controller: {
      ...app.config.controller,
      namespace: ns.name,
      executor: 'job',
      job: { ...app.config.controller.job, ...job },
    },
  };
}

/** The workers read the same configuration as the controller (the chart mounts one ConfigMap). */
function startController(config: Config): Promise<void> {
  writeFileSync(join(work, 'lc2-backup.yaml'), JSON.stringify(config));
  controller = new Controller({
    kube: kubeClient(),
    engine: { ...app.ctx, config, catalog, tolerateCatalogOutage: true },
    progressIntervalMs: 200,
    jobPollMs: 200,
  });
  return controller.start();
}

function backupRequest(name: string): Record<string, unknown> {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'BackupRequest',
    metadata: { name },
    spec: {
      projectId: 'retail',
      environment: 'prd',
      provider: 'local',
      database: { type: 'dump', instanceId: 'retail-prd-db' },
      documentLibrary: { sourceBucket: app.sourceBucket, destinationBucket: app.backupBucket },
    },
  };
}

async function statusOf(plural: string, name: string): Promise<Status | undefined> {
  try {
    const obj = (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural,
      name,
    })) as {
      status?: Status;
    };
    return obj.status ?? {};
  } catch {
    return undefined;
  }
}

async function finished(plural: string, name: string, timeoutMs = 120_000): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await statusOf(plural, name);
    if (status?.state === 'Succeeded' || status?.state === 'Failed') return status;
    if (Date.now() > deadline) throw new Error(`${plural} ${name} still ${status?.state ?? 'absent'}`);
    await sleep(200);
  }
}

beforeAll(async () => {
  await installCrds();
  const { postgres } = testbed();
  catalog = await openCatalog(
    `postgresql://${postgres.user}@${postgres.host}:${postgres.port}/${catalogDb.name}`,
    { pool: { password: postgres.password } },
  );
  // what the chart creates in the controller's namespace: the workers' ServiceAccount
  await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
    namespace: ns.name,
    body: { metadata: { name: 'lc2-backup-worker' } },
  });
  kubelet = await startKubelet({
    kubeConfig: kc,
    namespaces: [ns.name],
    commands: { 'lc2-backup': [process.execPath, join(root, 'src/cli/main.ts')] },
    cwd: root,
    // what the chart gives a worker: the configuration and the secrets it names by env
    env: {
      ...Object.fromEntries(
        Object.entries(process.env).filter(
          (e): e is [string, string] =>
            (e[0].startsWith('LC2_') || e[0].startsWith('PG')) && e[1] !== undefined,
        ),
      ),
      KUBECONFIG: testbed().kube.kubeconfig,
      LC2_CONFIG: join(work, 'lc2-backup.yaml'),
      LC2_TEST_CATALOG_PASSWORD: postgres.password,
    },
  });
});
afterAll(async () => {
  await controller?.stop();
  await kubelet.stop();
  await catalog.close();
  await dropDatabase('jobs_clone');
  rmSync(work, { recursive: true, force: true });
});

describe('executor: job', () => {
  it('runs a BackupRequest and a RestoreRequest in worker Jobs', async () => {
    await startController(configWith({}));
    const name = 'retail-prd-backup-20250701-010000';
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural: 'backuprequests',
      body: backupRequest(name),
    });
    const status = await finished('backuprequests', name);
    expect(status, JSON.stringify(status)).toMatchObject({ state: 'Succeeded', backupId: name });
    // the worker wrote the result; the Job controller counts the Pod a moment later
    const jobs = await (async () => {
      for (let i = 0; ; i++) {
        const list = await batch.listNamespacedJob({
          namespace: ns.name,
          labelSelector: `${requestLabel}=${name}`,
        });
        if (list.items[0]?.status?.succeeded === 1 || i > 100) return list;
        await sleep(100);
      }
    })();
    expect(jobs.items).toHaveLength(1);
    expect(jobs.items[0]?.status?.succeeded).toBe(1);
    expect(jobs.items[0]?.spec?.template.spec?.containers[0]?.command).toEqual([
      'lc2-backup',
      'worker',
      'backup',
      '--namespace',
      ns.name,
      '--name',
      name,
    ]);
    expect((await catalog.getBackup(name))?.state).toBe('Succeeded');

    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural: 'restorerequests',
      body: {
        apiVersion: `${group}/${version}`,
        kind: 'RestoreRequest',
        metadata: { name: 'clone-by-job' },
        spec: {
          projectId: 'retail',
          environment: 'prd',
          source: { backupId: name },
          target: {
            database: { instanceId: 'retail-clone-db', databaseName: 'jobs_clone' },
            documentLibrary: { bucket: app.cloneBucket, prefix: 'clone-by-job' },
          },
        },
      },
    });
    const restored = await finished('restorerequests', 'clone-by-job');
    expect(restored, JSON.stringify(restored)).toMatchObject({ state: 'Succeeded', backupId: name });
    expect(await dumpText('jobs_clone')).toBe(await dumpText(app.sourceDb));
    await controller?.stop();
  });

  it('fails the request with reason JobFailed and the tail of the worker output when the Job dies', async () => {
    // the workers' catalog accepts connections and never answers, so a worker hangs where it
    // starts (its catalog's connect timeout is 10 s) and the 2 s deadline kills it every time
    const held: Socket[] = [];
    const blackHole = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const { port } = blackHole.address() as AddressInfo;
    const { postgres } = testbed();
    await startController(
      configWith(
        { deadline: '2s', backoffLimit: 0 },
        `postgresql://${postgres.user}@127.0.0.1:${port}/never`,
      ),
    );
    const name = 'retail-prd-backup-20250701-020000';
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural: 'backuprequests',
      body: backupRequest(name),
    });
    const status = await finished('backuprequests', name);
    expect(status).toMatchObject({ state: 'Failed', reason: 'JobFailed' });
    expect(status.message).toMatch(
      /Job lc2-backup-retail-prd-backup-20250701-020000-[0-9a-f]{8} failed \(DeadlineExceeded/,
    );
    await controller?.stop();
    for (const socket of held) socket.destroy();
    blackHole.close();
  });
});

describe('BackupSchedule', () => {
  it('becomes a CronJob whose Job creates a BackupRequest that runs; suspend reaches the CronJob', async () => {
    await startController(configWith({}));
    const schedule = 'nightly';
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural: 'backupschedules',
      body: {
        apiVersion: `${group}/${version}`,
        kind: 'BackupSchedule',
        metadata: { name: schedule },
        spec: {
          schedule: '* * * * *',
          timeZone: 'Etc/UTC',
          template: { spec: (backupRequest('x') as { spec: unknown }).spec },
          retention: { keepLast: 3 },
        },
      },
    });
    const cron = await (async () => {
      for (let i = 0; i < 100; i++) {
        const found = await batch
          .readNamespacedCronJob({ name: cronJobName(ns.name, schedule), namespace: ns.name })
          .catch(() => undefined);
        if (found) return found;
        await sleep(100);
      }
      throw new Error('no CronJob');
    })();
    expect(cron.spec).toMatchObject({
      schedule: '* * * * *',
      timeZone: 'Etc/UTC',
      concurrencyPolicy: 'Forbid',
    });
    expect(cron.metadata?.labels).toMatchObject({
      'backup.liferay.cloud/schedule': schedule,
      'backup.liferay.cloud/schedule-namespace': ns.name,
    });

    // the CronJob fires at the next minute; its Job creates the request; the controller runs it
    let request: string | undefined;
    const deadline = Date.now() + 150_000;
    while (request === undefined && Date.now() < deadline) {
      const list = (await custom.listNamespacedCustomObject({
        group,
        version,
        namespace: ns.name,
        plural: 'backuprequests',
        labelSelector: `${scheduleLabel}=${schedule}`,
      })) as { items: { metadata: { name: string } }[] };
      request = list.items[0]?.metadata.name;
      if (request === undefined) await sleep(500);
    }
    expect(request).toMatch(/^retail-prd-backup-\d{8}-\d{6}$/);
    const status = await finished('backuprequests', request ?? '');
    expect(status.state).toBe('Succeeded');
    const scheduleStatus = await (async () => {
      for (let i = 0; i < 200; i++) {
        const s = await statusOf('backupschedules', schedule);
        if (s?.lastBackupId === request) return s;
        await sleep(200);
      }
      return statusOf('backupschedules', schedule);
    })();
    expect(scheduleStatus).toMatchObject({ lastBackupId: request, cronJob: cronJobName(ns.name, schedule) });

    await custom.patchNamespacedCustomObject(
      {
        group,
        version,
        namespace: ns.name,
        plural: 'backupschedules',
        name: schedule,
        body: { spec: { suspend: true } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const suspended = async (): Promise<boolean> => {
      for (let i = 0; i < 100; i++) {
        const found = await batch.readNamespacedCronJob({
          name: cronJobName(ns.name, schedule),
          namespace: ns.name,
        });
        if (found.spec.suspend === true) return true;
        await sleep(100);
      }
      return false;
    };
    expect(await suspended()).toBe(true);

    // deleting the schedule removes its CronJob (the finalizer's work)
    await custom.deleteNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural: 'backupschedules',
      name: schedule,
    });
    const gone = async (): Promise<boolean> => {
      for (let i = 0; i < 100; i++) {
        const found = await batch
          .readNamespacedCronJob({ name: cronJobName(ns.name, schedule), namespace: ns.name })
          .catch(() => undefined);
        if (found === undefined && (await statusOf('backupschedules', schedule)) === undefined) return true;
        await sleep(100);
      }
      return false;
    };
    expect(await gone()).toBe(true);
  });
});
