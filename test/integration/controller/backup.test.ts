// The controller on the real API server: a BackupRequest goes to Succeeded with the seed
// example's status fields filled (local provider: PostgreSQL + MinIO), a request naming another
// project's bucket fails Forbidden, and a request left InProgress by a crashed controller is
// resumed by the next one.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../../src/controller/controller.ts';
import { eventsWith, installCrds, kubeClient, kubeConfig, useNamespace } from '../../env/fixtures.ts';
import { dropDatabase, dumpText, useApp } from '../engine/harness.ts';

const app = useApp({ objects: 10 });
const ns = useNamespace('ctrl');
const kc = kubeConfig();
const custom = kc.makeApiClient(CustomObjectsApi);
const group = 'backup.liferay.cloud';
const version = 'v1alpha1';
const plural = 'backuprequests';
let controller: Controller | undefined;

type Status = Record<string, unknown> & { state?: string; reason?: string; message?: string };

function request(name: string, sourceBucket = app.sourceBucket): Record<string, unknown> {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'BackupRequest',
    metadata: { name, labels: { 'backup.liferay.cloud/project': 'retail' } },
    spec: {
      projectId: 'retail',
      environment: 'prd',
      provider: 'local',
      database: { type: 'dump', instanceId: 'retail-prd-db' },
      documentLibrary: { sourceBucket, destinationBucket: app.backupBucket, excludeGeneratedFiles: true },
    },
  };
}

async function create(body: Record<string, unknown>): Promise<void> {
  await custom.createNamespacedCustomObject({ group, version, namespace: ns.name, plural, body });
}

async function statusOf(name: string): Promise<Status> {
  const obj = (await custom.getNamespacedCustomObject({
    group,
    version,
    namespace: ns.name,
    plural,
    name,
  })) as { status?: Status };
  return obj.status ?? {};
}

async function finished(name: string, timeoutMs = 60_000): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await statusOf(name);
    if (status.state === 'Succeeded' || status.state === 'Failed') return status;
    if (Date.now() > deadline)
      throw new Error(`${name} still ${status.state ?? 'without status'} after ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

function startController(): Promise<void> {
  // one backup of the project at a time; the slot Leases live in the test's namespace
  const retail = { ...app.config.projects.retail, namespaces: [ns.name] } as NonNullable<
    typeof app.config.projects.retail
  >;
  const config = {
    ...app.config,
    projects: { ...app.config.projects, retail },
    controller: { ...app.config.controller, projectConcurrency: 1, namespace: ns.name },
  };
  controller = new Controller({
    kube: kubeClient(),
    engine: { ...app.ctx, config },
    progressIntervalMs: 100,
  });
  return controller.start();
}

beforeAll(async () => {
  await installCrds();
});
afterAll(async () => {
  await controller?.stop();
});

describe('BackupRequest through the controller', () => {
  it('resumes a request a crashed controller left InProgress, and finishes it once', async () => {
    // written while no controller runs: as a controller killed mid-backup leaves it
    await create(request('retail-prd-backup-20250401-090000'));
    await custom.patchNamespacedCustomObjectStatus(
      {
        group,
        version,
        namespace: ns.name,
        plural,
        name: 'retail-prd-backup-20250401-090000',
        body: { status: { state: 'InProgress', startTime: '2025-04-01T09:00:00Z' } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await startController();
    const status = await finished('retail-prd-backup-20250401-090000');
    expect(status).toMatchObject({
      state: 'Succeeded',
      startTime: '2025-04-01T09:00:00Z',
      backupId: 'retail-prd-backup-20250401-090000',
    });
    const events = await eventsWith(ns.name, ['Resumed', 'Completed'], {
      name: 'retail-prd-backup-20250401-090000',
    });
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['Resumed', 'Completed']));
    expect(await app.catalog.listBackups({ projectId: 'retail' })).toHaveLength(1);
  });

  it('drives a new request to Succeeded with the seed status fields filled', async () => {
    await create(request('retail-prd-backup-20250401-100000'));
    const status = await finished('retail-prd-backup-20250401-100000');
    expect(status).toMatchObject({
      state: 'Succeeded',
      backupId: 'retail-prd-backup-20250401-100000',
      observedGeneration: 1,
      database: { status: 'Succeeded', size: expect.stringMatching(/^[\d.]+ (B|KB|MB)$/) as unknown },
      documentLibrary: {
        status: 'Succeeded',
        objectCount: [...app.objects.keys()].filter((k) => !k.includes('thumbnails')).length,
        totalSize: expect.stringMatching(/^[\d.]+ (B|KB|MB)$/) as unknown,
        manifestPath: expect.stringMatching(
          new RegExp(`/${app.backupBucket}/retail/prd/20250401-100000/manifest\\.json$`),
        ) as unknown,
      },
      conditions: [expect.objectContaining({ type: 'Ready', status: 'True', reason: 'BackupCompleted' })],
    });
    expect(status.startTime).toEqual(expect.any(String));
    expect(status.completionTime).toEqual(expect.any(String));
    expect(status.duration).toMatch(/^\d+s$/);
    expect((await app.catalog.getBackup('retail-prd-backup-20250401-100000'))?.state).toBe('Succeeded');
  });

  it('runs one backup of the project at a time; the others wait in line, showing their position', async () => {
    const names = [
      'retail-prd-backup-20250401-120001',
      'retail-prd-backup-20250401-120002',
      'retail-prd-backup-20250401-120003',
    ];
    await Promise.all(names.map((name) => create(request(name))));
    let maxRunning = 0;
    const waiting = new Set<string>();
    for (;;) {
      const statuses = await Promise.all(names.map((name) => statusOf(name)));
      maxRunning = Math.max(maxRunning, statuses.filter((s) => s.state === 'InProgress').length);
      for (const s of statuses)
        if (s.reason === 'WaitingForSlot' && typeof s.message === 'string') waiting.add(s.message);
      if (statuses.every((s) => s.state === 'Succeeded' || s.state === 'Failed')) {
        expect(statuses.map((s) => s.state)).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
        break;
      }
      await sleep(50);
    }
    expect(maxRunning).toBe(1);
    expect([...waiting].join('\n')).toMatch(
      /waiting for a slot: all 1 of project retail's slots are taken; position [12] in line/,
    );
  });

  it('fails a request made from a namespace that is not its project’s with reason Forbidden', async () => {
    await create({
      ...request('retail-prd-backup-20250401-130000'),
      spec: {
        ...(request('x').spec as object),
        projectId: 'other',
        documentLibrary: {
          sourceBucket: app.otherBucket,
          destinationBucket: app.otherBucket.replace('other', 'elsewhere'),
        },
      },
    });
    const status = await finished('retail-prd-backup-20250401-130000');
    expect(status).toMatchObject({ state: 'Failed', reason: 'Forbidden' });
    expect(status.message).toContain(
      `spec.projectId: namespace "${ns.name}" does not belong to project "other" (its namespaces: proj-other-*)`,
    );
  });

  it('fails a request that names another project’s bucket with reason Forbidden, before any data moves', async () => {
    await create(request('retail-prd-backup-20250401-110000', app.otherBucket));
    const status = await finished('retail-prd-backup-20250401-110000');
    expect(status).toMatchObject({ state: 'Failed', reason: 'Forbidden' });
    expect(status.message).toContain(
      `spec.documentLibrary.sourceBucket: bucket "${app.otherBucket}" does not belong to project "retail"`,
    );
    expect(status.conditions).toEqual([
      expect.objectContaining({ type: 'Ready', status: 'False', reason: 'Forbidden' }),
    ]);
    expect(await app.catalog.getBackup('retail-prd-backup-20250401-110000')).toBeUndefined();
  });
});

describe('RestoreRequest through the controller', () => {
  const restore = (
    name: string,
    source: Record<string, string>,
    databaseName: string,
  ): Record<string, unknown> => ({
    apiVersion: `${group}/${version}`,
    kind: 'RestoreRequest',
    metadata: { name },
    spec: {
      projectId: 'retail',
      environment: 'prd',
      source,
      target: {
        database: { instanceId: 'retail-clone-db', databaseName },
        documentLibrary: { bucket: app.cloneBucket, prefix: name },
      },
    },
  });

  async function restoreStatus(name: string): Promise<Status> {
    for (let i = 0; i < 300; i++) {
      const obj = (await custom.getNamespacedCustomObject({
        group,
        version,
        namespace: ns.name,
        plural: 'restorerequests',
        name,
      })) as { status?: Status };
      if (obj.status?.state === 'Succeeded' || obj.status?.state === 'Failed') return obj.status;
      await sleep(200);
    }
    throw new Error(`${name} did not finish`);
  }

  it('restores the backup of a BackupRequest, named by the request, into a new database and bucket', async () => {
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural: 'restorerequests',
      body: restore('clone-a', { backupRequestName: 'retail-prd-backup-20250401-100000' }, 'ctrl_clone_a'),
    });
    const status = await restoreStatus('clone-a');
    expect(status).toMatchObject({
      state: 'Succeeded',
      reason: 'RestoreCompleted',
      backupId: 'retail-prd-backup-20250401-100000',
    });
    expect(await dumpText('ctrl_clone_a')).toBe(await dumpText(app.sourceDb));
    const restored = await app.store.list(app.cloneBucket, 'clone-a/', { limit: 1000 });
    expect(restored.objects).toHaveLength(
      [...app.objects.keys()].filter((k) => !k.includes('thumbnails')).length,
    );
  });

  it('fails a restore a crashed controller left InProgress with reason Interrupted, saying what to clean up', async () => {
    await controller?.stop();
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural: 'restorerequests',
      body: restore('clone-b', { backupId: 'retail-prd-backup-20250401-100000' }, 'ctrl_clone_b'),
    });
    await custom.patchNamespacedCustomObjectStatus(
      {
        group,
        version,
        namespace: ns.name,
        plural: 'restorerequests',
        name: 'clone-b',
        body: { status: { state: 'InProgress' } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await startController();
    const status = await restoreStatus('clone-b');
    expect(status).toMatchObject({ state: 'Failed', reason: 'Interrupted' });
    expect(status.message).toContain('the target database ctrl_clone_b on retail-clone-db');
  });
});

afterAll(async () => {
  await dropDatabase('ctrl_clone_a');
});
