// The controller as a process, as it runs in a cluster: `lc2-backup controller` with a
// KUBECONFIG. Killed with SIGKILL in the middle of a backup and started again, it finishes the
// request exactly once (one catalog row, one set of artifacts); SIGTERM stops it cleanly.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCatalog } from '../../src/catalog/catalog.ts';
import { listAll } from '../../src/components/documentLibrary/copy.ts';
import { installCrds, kubeConfig, testbed, useNamespace } from '../env/fixtures.ts';
import { appConfig, useApp } from '../integration/engine/harness.ts';

const app = useApp({ objects: 600 });
const ns = useNamespace('ctrl-e2e');
const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'lc2-controller-e2e-'));
const catalogUrl = `pglite://${join(work, 'catalog')}`;
const custom = kubeConfig().makeApiClient(CustomObjectsApi);
const name = 'retail-prd-backup-20250501-080000';
const children: ChildProcess[] = [];
let logs = '';

function startController(): ChildProcess {
  const child = spawn(
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
      env: { ...process.env, KUBECONFIG: testbed().kube.kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stderr.on('data', (c: Buffer) => (logs += c.toString()));
  children.push(child);
  return child;
}

async function status(): Promise<{ state?: string; progress?: { objectsDone?: number }; reason?: string }> {
  const obj = (await custom.getNamespacedCustomObject({
    group: 'backup.liferay.cloud',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'backuprequests',
    name,
  })) as {
    status?: { state?: string; progress?: { objectsDone?: number } };
  };
  return obj.status ?? {};
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; controller output:\n${logs.slice(-3000)}`);
    await sleep(100);
  }
}

beforeAll(async () => {
  await installCrds();
  // one copy at a time makes the backup long enough to be killed in the middle of it
  const base = appConfig(app, { concurrency: 1 });
  const config = {
    ...base,
    projects: { ...base.projects, retail: { ...base.projects.retail, namespaces: [ns.name] } },
    controller: { projectConcurrency: 2, namespace: ns.name },
  };
  writeFileSync(join(work, 'lc2-backup.yaml'), JSON.stringify(config));
});
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('lc2-backup controller (a process)', () => {
  it('survives SIGKILL mid-backup: the next controller finishes the request once, without duplicates', async () => {
    const first = startController();
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
    // killed once some documents are stored: the dump is done and the copy is under way
    await until('documents being copied', async () => {
      const page = await app.store.list(app.backupBucket, 'retail/prd/20250501-080000/dl/', { limit: 5 });
      return page.objects.length >= 5 || undefined;
    });
    first.kill('SIGKILL');
    await new Promise((resolve) => first.on('exit', resolve));
    expect((await status()).state).toBe('InProgress');

    const second = startController();
    const final = await until('the request to finish', async () => {
      const s = await status();
      return s.state === 'Succeeded' || s.state === 'Failed' ? s : undefined;
    });
    expect(final.state).toBe('Succeeded');
    expect(final.reason).toBe('BackupCompleted');

    // SIGTERM: a clean stop, exit code 0
    second.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => second.on('exit', resolve));
    expect(code).toBe(0);

    const catalog = await openCatalog(catalogUrl);
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
    // one root, every document once, plus the dump, the entries and the manifest
    expect(new Set(keys.map((k) => k.split('/').slice(0, 3).join('/')))).toEqual(
      new Set(['retail/prd/20250501-080000']),
    );
    expect(keys).toHaveLength(originals + 3);
  });
});
