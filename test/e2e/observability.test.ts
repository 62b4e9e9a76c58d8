// Operating the controller as a process: /metrics scraped while it backs up (request counts,
// sizes, durations, leader), /healthz and /readyz, JSON log lines with the request's identity —
// and a canary secret planted everywhere a secret can travel (a database password and an S3
// secret key from the environment, a password file, the resulting connection and SDK errors)
// that appears nowhere in the logs, the Events, the status or the catalog.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCatalog } from '../../src/catalog/catalog.ts';
import { eventsWith, installCrds, kubeConfig, testbed, useBucket, useNamespace } from '../env/fixtures.ts';
import { appConfig, useApp } from '../integration/engine/harness.ts';

const canary = 'Canary-Pa55word-7f3b9e1c';
const app = useApp({ objects: 40 });
const canarySource = useBucket('canary-src');
const canaryDestination = useBucket('canary-dst');
const ns = useNamespace('obs-e2e');
const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'lc2-obs-e2e-'));
const catalogUrl = `pglite://${join(work, 'catalog')}`;
const kc = kubeConfig();
const custom = kc.makeApiClient(CustomObjectsApi);
let child: ChildProcess | undefined;
let stdout = '';
let stderr = '';

function request(
  name: string,
  project: string,
  source: string,
  destination: string,
): Record<string, unknown> {
  return {
    apiVersion: 'backup.liferay.cloud/v1alpha1',
    kind: 'BackupRequest',
    metadata: { name },
    spec: {
      projectId: project,
      environment: 'prd',
      provider: 'local',
      database: { type: 'dump', instanceId: `${project}-prd-db` },
      documentLibrary: { sourceBucket: source, destinationBucket: destination },
    },
  };
}

async function finished(name: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const obj = (await custom.getNamespacedCustomObject({
      group: 'backup.liferay.cloud',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'backuprequests',
      name,
    })) as { status?: Record<string, unknown> };
    if (obj.status?.state === 'Succeeded' || obj.status?.state === 'Failed') return obj.status;
    await sleep(100);
  }
  throw new Error(`${name} did not finish; controller output:\n${stderr.slice(-3000)}`);
}

async function metricsPort(): Promise<number> {
  for (let i = 0; i < 300; i++) {
    const m = /metrics and health on port (\d+)/.exec(stderr);
    if (m) return Number(m[1]);
    await sleep(100);
  }
  throw new Error(`the controller did not report its metrics port:\n${stderr}`);
}

beforeAll(async () => {
  await installCrds();
  const base = appConfig(app, {});
  const { s3, postgres } = testbed();
  writeFileSync(join(work, 'secret-file'), canary);
  const config = {
    ...base,
    // a secret from a file: registered and scrubbed like the others
    catalogPassword: { file: join(work, 'secret-file') },
    stores: {
      ...base.stores,
      // the right access key with the canary as its secret: every request signs wrongly
      leaky: {
        type: 's3',
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        accessKeyId: { env: 'LC2_TESTBED_S3_KEY' },
        secretAccessKey: { env: 'LC2_CANARY_SECRET' },
      },
    },
    projects: {
      ...base.projects,
      retail: { ...base.projects.retail, namespaces: [ns.name] },
      canary: {
        provider: 'local',
        namespaces: [ns.name],
        // the canary as the database password: authentication fails
        databases: {
          'canary-prd-db': {
            host: postgres.host,
            port: postgres.port,
            database: 'postgres',
            user: postgres.user,
            password: { env: 'LC2_CANARY_SECRET' },
          },
        },
        buckets: {
          [canarySource.name]: 'minio',
          [canaryDestination.name]: 'minio',
          'canary-leaky-src': 'leaky',
          'canary-leaky-dst': 'leaky',
        },
      },
    },
    controller: { namespace: ns.name },
  };
  writeFileSync(join(work, 'lc2-backup.yaml'), JSON.stringify(config));
  child = spawn(
    process.execPath,
    [
      'src/cli/main.ts',
      '--config',
      join(work, 'lc2-backup.yaml'),
      '--catalog',
      catalogUrl,
      'controller',
      '--metrics-port',
      '0',
    ],
    {
      cwd: root,
      env: { ...process.env, KUBECONFIG: testbed().kube.kubeconfig, LC2_CANARY_SECRET: canary },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
});
afterAll(() => {
  child?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('the controller process, observed', () => {
  it('serves metrics and health while it backs up, and logs JSON lines with the request on them', async () => {
    const port = await metricsPort();
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const name = 'retail-prd-backup-20250801-010000';
    await custom.createNamespacedCustomObject({
      group: 'backup.liferay.cloud',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'backuprequests',
      body: request(name, 'retail', app.sourceBucket, app.backupBucket),
    });
    expect(await finished(name)).toMatchObject({ state: 'Succeeded' });
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(
      /lc2_backup_requests_total\{kind="backup",state="Succeeded",project="retail"\} 1/,
    );
    expect(metrics).toMatch(/lc2_backup_size_bytes\{project="retail",component="documentLibrary"\} [1-9]/);
    expect(metrics).toMatch(/lc2_backup_duration_seconds_count\{component="total"\} 1/);
    expect(metrics).toMatch(/lc2_backup_objects_copied_total\{project="retail"\} [1-9]/);
    expect(metrics).toMatch(/lc2_backup_last_success_timestamp_seconds\{project="retail"\} \d+/);
    expect(metrics).toMatch(/lc2_backup_leader 1/);
    expect(metrics).not.toContain(name); // no request names as labels
    const lines = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const own = lines.filter((l) => l.backupId === name);
    expect(own.length).toBeGreaterThan(0);
    expect(own.every((l) => l.namespace === ns.name && l.name === name)).toBe(true);
  });

  it('leaks the canary nowhere: logs, Events, status, catalog', async () => {
    // the canary as the database password (pg_dump's authentication fails), then as the S3
    // secret key (MinIO refuses the signature)
    const runs = [
      ['canary-prd-backup-20250801-020000', canarySource.name, canaryDestination.name],
      ['canary-prd-backup-20250801-030000', 'canary-leaky-src', 'canary-leaky-dst'],
    ] as const;
    const statuses: Record<string, unknown>[] = [];
    for (const [name, source, destination] of runs) {
      await custom.createNamespacedCustomObject({
        group: 'backup.liferay.cloud',
        version: 'v1alpha1',
        namespace: ns.name,
        plural: 'backuprequests',
        body: request(name, 'canary', source, destination),
      });
      statuses.push(await finished(name));
    }
    expect(statuses.map((s) => s.state)).toEqual(['Failed', 'Failed']);
    expect(String(statuses[0]?.message)).toMatch(/password authentication failed|pg_dump/);
    expect(String(statuses[1]?.message)).toMatch(/signature|SignatureDoesNotMatch|access/i);
    // the Warning Events of both failures (posted in the background, so waited for)
    const events = await eventsWith(
      ns.name,
      statuses.map((s) => String(s.reason)),
    );
    const requests: unknown = await custom.listNamespacedCustomObject({
      group: 'backup.liferay.cloud',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'backuprequests',
    });
    child?.kill('SIGTERM');
    await new Promise((resolve) => child?.on('exit', resolve));
    const catalog = await openCatalog(catalogUrl);
    const rows = await catalog.listBackups({ limit: 1000 });
    await catalog.close();
    const places = {
      stdout,
      stderr,
      events: JSON.stringify(events),
      requests: JSON.stringify(requests),
      catalog: JSON.stringify(rows),
    };
    for (const [place, text] of Object.entries(places)) expect(text, place).not.toContain(canary);
  });
});
