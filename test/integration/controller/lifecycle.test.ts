// A request's life around its run, on the real API server: the finalizer, deletion with
// deletionPolicy Retain and Delete, archival to a PostgreSQL catalog that goes away in the middle
// (the backup still succeeds; archival catches up once the catalog is back), removal after the
// time-to-live, the global limit, and leader election between two electors.
import { createServer, type Server, type Socket, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCatalog, type Catalog } from '../../../src/catalog/catalog.ts';
import { Controller } from '../../../src/controller/controller.ts';
import { LeaderElector } from '../../../src/controller/leader.ts';
import { poolLabel } from '../../../src/controller/slots.ts';
import { finalizer } from '../../../src/controller/lifecycle.ts';
import { microTime } from '../../../src/kube/types.ts';
import { lineLogger } from '../../../src/observability/logger.ts';
import {
  installCrds,
  kubeClient,
  kubeConfig,
  testbed,
  useDatabase,
  useNamespace,
} from '../../env/fixtures.ts';
import { useApp } from '../engine/harness.ts';

const app = useApp({ objects: 6 });
const ns = useNamespace('life');
const catalogDb = useDatabase('catalog');
const kc = kubeConfig();
const custom = kc.makeApiClient(CustomObjectsApi);
const core = kc.makeApiClient(CoreV1Api);
const group = 'backup.liferay.cloud';
const version = 'v1alpha1';
const plural = 'backuprequests';

interface Obj {
  metadata: { finalizers?: string[]; annotations?: Record<string, string> };
  status?: { state?: string; backupId?: string; message?: string; reason?: string };
}

/** A TCP proxy in front of the catalog's PostgreSQL that the test can cut and restore. */
class Cuttable {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly target: { host: string; port: number };
  port = 0;
  constructor(target: { host: string; port: number }) {
    this.target = target;
  }
  async open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address !== null && typeof address === 'object') this.port = address.port;
  }
  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

function request(name: string, deletionPolicy: 'Retain' | 'Delete'): Record<string, unknown> {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'BackupRequest',
    metadata: { name },
    spec: {
      projectId: 'retail',
      environment: 'prd',
      provider: 'local',
      deletionPolicy,
      database: { type: 'dump', instanceId: 'retail-prd-db' },
      documentLibrary: { sourceBucket: app.sourceBucket, destinationBucket: app.backupBucket },
    },
  };
}

async function get(name: string): Promise<Obj | undefined> {
  try {
    return (await custom.getNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural,
      name,
    })) as Obj;
  } catch {
    return undefined;
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

let proxy: Cuttable;
let catalog: Catalog;
/** The same catalog, not through the proxy: what the test reads while the controller's is cut. */
let history: Catalog;
let controller: Controller | undefined;

function startController(
  ttl: string,
  globalConcurrency = 10,
  projectConcurrency = 2,
  slotNamespace = ns.name,
): Promise<void> {
  const retail = { ...app.config.projects.retail, namespaces: [ns.name] } as NonNullable<
    typeof app.config.projects.retail
  >;
  const config = {
    ...app.config,
    projects: { ...app.config.projects, retail },
    controller: {
      ...app.config.controller,
      namespace: slotNamespace,
      finishedTTL: ttl,
      globalConcurrency,
      projectConcurrency,
    },
  };
  controller = new Controller({
    kube: kubeClient(),
    engine: { ...app.ctx, config, catalog, tolerateCatalogOutage: true },
    progressIntervalMs: 100,
    archiveRetryMs: 300,
  });
  return controller.start();
}

beforeAll(async () => {
  await installCrds();
  const { postgres } = testbed();
  proxy = new Cuttable({ host: postgres.host, port: postgres.port });
  await proxy.open();
  const url = `postgresql://${postgres.user}@127.0.0.1:${proxy.port}/${catalogDb.name}`;
  catalog = await openCatalog(url, { pool: { password: postgres.password, connectionTimeoutMillis: 1000 } });
  const direct = `postgresql://${postgres.user}@${postgres.host}:${postgres.port}/${catalogDb.name}`;
  history = await openCatalog(direct, { pool: { password: postgres.password } });
});
afterAll(async () => {
  await controller?.stop();
  await proxy.cut();
  await catalog.close().catch(() => undefined);
  await history.close().catch(() => undefined);
});

describe('a request around its run', () => {
  it('holds a finalizer; deleting with Retain keeps the backup, with Delete removes it; both stay in the catalog', async () => {
    await startController('1h');
    for (const [name, policy] of [
      ['retail-prd-backup-20250601-010000', 'Retain'],
      ['retail-prd-backup-20250601-020000', 'Delete'],
    ] as const) {
      await custom.createNamespacedCustomObject({
        group,
        version,
        namespace: ns.name,
        plural,
        body: request(name, policy),
      });
    }
    for (const name of ['retail-prd-backup-20250601-010000', 'retail-prd-backup-20250601-020000']) {
      const done = await until(`${name} finished and recorded`, async () => {
        const o = await get(name);
        const row = await history.getBackup(name);
        const state = o?.status?.state;
        return state === 'Succeeded' && row?.state === state ? o : undefined;
      });
      expect(done.status?.state).toBe('Succeeded');
      expect(done.metadata.finalizers).toContain(finalizer);
      await custom.deleteNamespacedCustomObject({ group, version, namespace: ns.name, plural, name });
      await until(`${name} gone`, async () => ((await get(name)) === undefined ? true : undefined));
    }
    const kept = await app.store.list(app.backupBucket, 'retail/prd/20250601-010000/', { limit: 1000 });
    expect(kept.objects.map((o) => o.key)).toContain('retail/prd/20250601-010000/manifest.json');
    const removed = await app.store.list(app.backupBucket, 'retail/prd/20250601-020000/', { limit: 1000 });
    expect(removed.objects).toEqual([]);
    expect((await history.getBackup('retail-prd-backup-20250601-010000'))?.state).toBe('Succeeded');
    expect((await history.getBackup('retail-prd-backup-20250601-020000'))?.state).toBe('Deleted');
    await controller?.stop();
  });

  it('finishes a backup while the catalog is down, archives it once the catalog is back, then removes it after its TTL', async () => {
    await startController('3s');
    await proxy.cut();
    const name = 'retail-prd-backup-20250601-030000';
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural,
      body: request(name, 'Retain'),
    });
    const done = await until('the backup to finish', async () => {
      const o = await get(name);
      return o?.status?.state === 'Succeeded' || o?.status?.state === 'Failed' ? o : undefined;
    });
    expect(done.status).toMatchObject({ state: 'Succeeded' });
    await sleep(4000); // a few archival attempts fail meanwhile; the TTL (3 s) has passed
    expect(await history.getBackup(name)).toBeUndefined();
    // not archived, so not removed
    expect((await get(name))?.status?.state).toBe('Succeeded');
    await proxy.open();
    await until('archival to catch up', async () =>
      (await history.getBackup(name))?.state === 'Succeeded' ? true : undefined,
    );
    expect(await history.getBackup(name)).toMatchObject({
      state: 'Succeeded',
      crName: name,
      crNamespace: ns.name,
      dlObjectCount: expect.any(Number) as unknown,
    });
    await until(
      'removal after the TTL',
      async () => ((await get(name)) === undefined ? true : undefined),
      20_000,
    );
    // removal is housekeeping: the stored backup stays whatever the deletionPolicy
    const kept = await app.store.list(app.backupBucket, 'retail/prd/20250601-030000/', { limit: 1000 });
    expect(kept.objects.map((o) => o.key)).toContain('retail/prd/20250601-030000/manifest.json');
    await controller?.stop();
  });

  // A running request holds the only slot of a pool, as a restarted controller finds it (a
  // foreign finalizer and a pending deletion keep this controller's hands off the holder); the
  // next request waits until the holder goes.
  async function heldSlotMakesNextWait(
    pool: { lease: string; message: RegExp; labels?: Record<string, string> },
    names: [string, string],
    start: () => Promise<void>,
  ) {
    const [holder, waiting] = names;
    const body = request(holder, 'Retain') as { metadata: Record<string, unknown> };
    body.metadata = { ...body.metadata, finalizers: ['test.lc2/hold'] };
    await custom.createNamespacedCustomObject({ group, version, namespace: ns.name, plural, body });
    await custom.patchNamespacedCustomObjectStatus(
      { group, version, namespace: ns.name, plural, name: holder, body: { status: { state: 'InProgress' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await custom.deleteNamespacedCustomObject({ group, version, namespace: ns.name, plural, name: holder });
    const leases = kc.makeApiClient(CoordinationV1Api);
    // earlier runs in this namespace may have left the Lease free; take it for the holder
    await leases.deleteNamespacedLease({ name: pool.lease, namespace: ns.name }).catch(() => undefined);
    await leases.createNamespacedLease({
      namespace: ns.name,
      body: {
        metadata: { name: pool.lease, ...(pool.labels === undefined ? {} : { labels: pool.labels }) },
        spec: {
          holderIdentity: `${ns.name}/${holder}`,
          acquireTime: microTime() as unknown as Date,
          renewTime: microTime() as unknown as Date,
        },
      },
    });
    await start();
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural,
      body: request(waiting, 'Retain'),
    });
    const status = await until('the request to wait for the slot', async () => {
      const s = (await get(waiting))?.status;
      return s?.reason === 'WaitingForSlot' ? s : undefined;
    });
    expect(status.message).toMatch(pool.message);
    if (pool.labels === undefined) {
      // a Lease without the pool's labels (as versions before them wrote it) is invisible to the
      // controller's informer: the slot looked free, so the request was told InProgress, lost the
      // take and went back to waiting — with an Event saying so, and no backup written
      const events = await until('the SlotTaken event', async () => {
        const list = await core.listNamespacedEvent({
          namespace: ns.name,
          fieldSelector: `involvedObject.name=${waiting}`,
        });
        const found = list.items.filter((e) => e.reason === 'SlotTaken');
        return found.length > 0 ? found : undefined;
      });
      expect(events[0]?.message).toMatch(/taken by another writer before this request's; waiting again/);
      const stored = await app.store.list(app.backupBucket, 'retail/prd/', { limit: 1000 });
      expect(stored.objects.filter((o) => o.key.includes('20250601-070000'))).toEqual([]);
    }
    await sleep(1500);
    expect((await get(waiting))?.status?.state).toBe('Pending');
    // the holder finishes (here: goes away): the waiting request runs
    await custom.patchNamespacedCustomObject(
      { group, version, namespace: ns.name, plural, name: holder, body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const done = await until('the waiting request to finish', async () => {
      const s = (await get(waiting))?.status;
      return s?.state === 'Succeeded' || s?.state === 'Failed' ? s : undefined;
    });
    expect(done.state).toBe('Succeeded');
  }

  it('holds the per-project limit in Leases across a restart: a held slot makes the next request wait', async () => {
    await heldSlotMakesNextWait(
      {
        lease: 'lc2-slot-retail-0',
        message: /waiting for a slot: all 1 of project retail's slots are taken; position 1 in line/,
      },
      ['retail-prd-backup-20250601-060000', 'retail-prd-backup-20250601-070000'],
      () => startController('1h', 10, 1),
    );
    await controller?.stop();
  });

  it('sends a request whose slot take failed back to Pending with the reason, and starts it (not resumes it) once the take works', async () => {
    // the slot Leases' namespace does not exist yet: the take fails (404), after the InProgress
    const slotNs = `${ns.name}-slots`;
    await startController('1h', 10, 2, slotNs);
    const name = 'retail-prd-backup-20250601-080000';
    try {
      await custom.createNamespacedCustomObject({
        group,
        version,
        namespace: ns.name,
        plural,
        body: request(name, 'Retain'),
      });
      const events = async (reason: string) =>
        (
          await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${name}` })
        ).items.filter((e) => e.reason === reason);
      const warning = await until('the SlotTakeFailed event', async () => {
        const found = await events('SlotTakeFailed');
        return found[0];
      });
      expect(warning.type).toBe('Warning');
      expect(warning.message).toMatch(
        new RegExp(
          `taking a slot of project retail failed, nothing was started; retrying: .*namespace "${slotNs}"`,
        ),
      );
      const pending = await until('the request back to Pending', async () => {
        const s = (await get(name))?.status;
        return s?.state === 'Pending' ? s : undefined;
      });
      expect(pending.reason).toBe('SlotTakeFailed');
      expect(pending.message).toMatch(/create it or set controller.namespace/);
      await core.createNamespace({ body: { metadata: { name: slotNs } } });
      const done = await until('the request to finish', async () => {
        const s = (await get(name))?.status;
        return s?.state === 'Succeeded' || s?.state === 'Failed' ? s : undefined;
      });
      expect(done.state).toBe('Succeeded');
      // started anew, not taken for a run resumed after a controller restart
      expect(await events('Resumed')).toEqual([]);
    } finally {
      await controller?.stop();
      await core.deleteNamespace({ name: slotNs }).catch(() => undefined);
    }
  });

  it('holds the global limit across a restart, counted over the project slots; removes the old global pool', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    // a Lease of the second pool that versions before 2026-11-27 kept for the global limit
    const old = 'lc2-limit-global-0';
    await leases.deleteNamespacedLease({ name: old, namespace: ns.name }).catch(() => undefined);
    await leases.createNamespacedLease({
      namespace: ns.name,
      body: {
        metadata: { name: old, labels: { [poolLabel]: 'lc2-limit' } },
        spec: { holderIdentity: `${ns.name}/gone`, acquireTime: microTime() as unknown as Date },
      },
    });
    // the project allows 2; the one running request fills the global limit of 1
    await heldSlotMakesNextWait(
      {
        lease: 'lc2-slot-retail-1',
        labels: { [poolLabel]: 'lc2-slot', 'backup.liferay.cloud/slot-project': 'retail' },
        message: /waiting for a slot: all 1 of the global slots are taken; position 1 in line/,
      },
      ['retail-prd-backup-20250601-040000', 'retail-prd-backup-20250601-050000'],
      () => startController('1h', 1),
    );
    const left = await leases.readNamespacedLease({ name: old, namespace: ns.name }).catch(() => undefined);
    expect(left).toBeUndefined();
    await controller?.stop();
  });
});

describe('leader election', () => {
  const options = { namespace: '', leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 };

  it('lets one elector lead; a clean release hands over at once; a stolen Lease deposes the leader', async () => {
    const lines: string[] = [];
    const log = lineLogger((line) => lines.push(line));
    const base = { ...options, namespace: ns.name, kube: kubeClient(), log, name: 'test-leader' };
    const a = new LeaderElector({ ...base, identity: 'replica-a' });
    const b = new LeaderElector({ ...base, identity: 'replica-b' });
    const stop = new AbortController();
    await a.acquire(stop.signal);
    let bLeads = false;
    const bAcquired = b.acquire(stop.signal).then(() => (bLeads = true));
    await sleep(3500); // longer than the lease duration: a renews, so b must still wait
    expect(bLeads, lines.join('')).toBe(false);
    const released = Date.now();
    await a.release();
    await bAcquired;
    expect(Date.now() - released).toBeLessThan(2000);
    expect(a.lost.aborted).toBe(false);

    // someone else writes the Lease (b was partitioned away, its term ended): b steps down
    const leases = kc.makeApiClient(CoordinationV1Api);
    const lease = await leases.readNamespacedLease({ name: 'test-leader', namespace: ns.name });
    await leases.replaceNamespacedLease({
      name: 'test-leader',
      namespace: ns.name,
      body: {
        metadata: { name: 'test-leader', resourceVersion: lease.metadata?.resourceVersion },
        spec: {
          holderIdentity: 'replica-c',
          leaseDurationSeconds: 3,
          renewTime: microTime() as unknown as Date,
        },
      },
    });
    await until('b to step down', () => Promise.resolve(b.lost.aborted || undefined), 5000);
    expect(String(b.lost.reason)).toMatch(/no longer the leader \(the Lease is held by replica-c now\)/);
    stop.abort();
  });
});
