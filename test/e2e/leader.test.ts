// Two controller replicas with leader election, as the Helm chart runs them: one leads, the
// other waits. The leader is killed with SIGKILL in the middle of a backup; the other takes the
// Lease within 15 s, resumes the request and finishes it once (one catalog row, one set of
// artifacts). The catalog is PostgreSQL, shared by both replicas.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCatalog } from '../../src/catalog/catalog.ts';
import { listAll } from '../../src/components/documentLibrary/copy.ts';
import { installCrds, kubeConfig, testbed, useDatabase, useNamespace } from '../env/fixtures.ts';
import { appConfig, useApp } from '../integration/engine/harness.ts';

const app = useApp({ objects: 600 });
const ns = useNamespace('leader-e2e');
const catalogDb = useDatabase('leader_catalog');
const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'lc2-leader-e2e-'));
const kc = kubeConfig();
const custom = kc.makeApiClient(CustomObjectsApi);
const name = 'retail-prd-backup-20250502-080000';
const children = new Map<string, ChildProcess>();
let logs = '';

function catalogUrl(): string {
  const { postgres } = testbed();
  return `postgresql://${postgres.user}@${postgres.host}:${postgres.port}/${catalogDb.name}`;
}

function startReplica(identity: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      'src/cli/main.ts',
      '--config',
      join(work, 'lc2-backup.yaml'),
      'controller',
      '--metrics-port',
      '0',
      '--leader-elect',
      '--identity',
      identity,
    ],
    {
      cwd: root,
      env: {
        ...process.env,
        KUBECONFIG: testbed().kube.kubeconfig,
        LC2_TEST_CATALOG_PASSWORD: testbed().postgres.password,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stderr.on('data', (c: Buffer) => (logs += `[${identity}] ${c.toString()}`));
  children.set(identity, child);
  return child;
}

async function status(): Promise<{ state?: string; reason?: string }> {
  const obj = (await custom.getNamespacedCustomObject({
    group: 'backup.liferay.cloud',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'backuprequests',
    name,
  })) as { status?: { state?: string; reason?: string } };
  return obj.status ?? {};
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; output:\n${logs.slice(-4000)}`);
    await sleep(100);
  }
}

async function leaseHolder(): Promise<string | undefined> {
  const lease = await kc
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: 'lc2-backup-leader', namespace: ns.name })
    .catch(() => undefined);
  const holder = lease?.spec?.holderIdentity;
  return holder === undefined || holder === '' ? undefined : holder;
}

beforeAll(async () => {
  await installCrds();
  const base = appConfig(app, { concurrency: 1 });
  const config = {
    ...base,
    catalog: catalogUrl(),
    catalogPassword: { env: 'LC2_TEST_CATALOG_PASSWORD' },
    projects: { ...base.projects, retail: { ...base.projects.retail, namespaces: [ns.name] } },
    controller: { namespace: ns.name },
  };
  writeFileSync(join(work, 'lc2-backup.yaml'), JSON.stringify(config));
});
afterAll(() => {
  for (const child of children.values()) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('two controller replicas with leader election', () => {
  it('fails over within 15 s when the leader is killed mid-backup; the request finishes once', async () => {
    startReplica('replica-a');
    const leader = await until('a leader', leaseHolder);
    expect(leader).toBe('replica-a');
    startReplica('replica-b');
    await until('replica-b to wait', () =>
      Promise.resolve(logs.includes('[replica-b] lc2-backup controller: waiting to lead') || undefined),
    );
    await custom.createNamespacedCustomObject({
      group: 'backup.liferay.cloud',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'backuprequests',
      body: {
        apiVersion: 'backup.liferay.cloud/v1alpha1',
        kind: 'BackupRequest',
        metadata: { name },
        spec: {
          projectId: 'retail',
          environment: 'prd',
          provider: 'local',
          database: { type: 'dump', instanceId: 'retail-prd-db' },
          documentLibrary: {
            sourceBucket: app.sourceBucket,
            destinationBucket: app.backupBucket,
            excludeGeneratedFiles: true,
          },
        },
      },
    });
    await until('documents being copied', async () => {
      const page = await app.store.list(app.backupBucket, 'retail/prd/20250502-080000/dl/', { limit: 5 });
      return page.objects.length >= 5 || undefined;
    });
    // only the leader works: the waiting replica has not touched the request
    expect(logs).not.toContain('[replica-b] lc2-backup controller: watching');
    const killed = Date.now();
    children.get('replica-a')?.kill('SIGKILL');
    await until(
      'replica-b to take the Lease',
      async () => ((await leaseHolder()) === 'replica-b' ? true : undefined),
      30_000,
    );
    const failover = Date.now() - killed;
    expect(failover).toBeLessThan(15_000);
    const final = await until('the request to finish', async () => {
      const s = await status();
      return s.state === 'Succeeded' || s.state === 'Failed' ? s : undefined;
    });
    expect(final.state).toBe('Succeeded');
    process.stderr.write(`leader fail-over after SIGKILL: ${failover} ms\n`);

    const catalog = await openCatalog(catalogUrl(), { pool: { password: testbed().postgres.password } });
    try {
      const rows = await catalog.listBackups({ projectId: 'retail' });
      expect(rows.map((r) => [r.backupId, r.state])).toEqual([[name, 'Succeeded']]);
    } finally {
      await catalog.close();
    }
    const keys: string[] = [];
    for await (const o of listAll({ store: app.store, bucket: app.backupBucket, prefix: '' }))
      keys.push(o.key);
    const originals = [...app.objects.keys()].filter((k) => !k.includes('thumbnails')).length;
    expect(keys).toHaveLength(originals + 3);

    // a clean stop hands the Lease back: nobody holds it afterwards
    children.get('replica-b')?.kill('SIGTERM');
    await new Promise((resolve) => children.get('replica-b')?.on('exit', resolve));
    expect(await leaseHolder()).toBeUndefined();
  });
});
