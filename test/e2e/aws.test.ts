// The seed-001 example BackupRequest, unchanged, through the CLI on the aws provider (defaulted:
// the request names none and neither does the project): RDS snapshot in moto, documents and
// manifest in MinIO, catalog row Succeeded; then a RestoreRequest → a NEW instance in moto and
// a new bucket in MinIO holding the same documents. The same request with `database.type: dump`
// (pg_dump through the instance's endpoint override, the test bed PostgreSQL) and its
// RestoreRequest into a NEW database on that instance: identical data.
import {
  CreateDBInstanceCommand,
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliIn } from '../env/runCli.ts';
import { listAll, sha256Of } from '../../src/components/documentLibrary/copy.ts';
import { StoreRegistry } from '../../src/engine/stores.ts';
import { parseConfig } from '../../src/config/config.ts';
import {
  deleteBucket,
  installCrds,
  kubeConfig,
  s3Client,
  testbed,
  uniqueName,
  withPg,
  kubeClient,
} from '../env/fixtures.ts';
import { dropDatabase, dumpText } from '../integration/engine/harness.ts';
import { openCatalog, type Catalog } from '../../src/catalog/catalog.ts';
import { Controller } from '../../src/controller/controller.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { testbedConfig } from '../env/testbed.ts';

const root = join(import.meta.dirname, '..', '..');
const seed = join(root, 'api/v1alpha1/testdata/seed-001-backuprequest.yaml');
const work = mkdtempSync(join(tmpdir(), 'lc2-aws-e2e-'));
// the seed's names, as they are
const backupId = 'retail-prd-backup-20251109-143000';
const snapshotId = `lc2-${backupId}`;
const instance = 'retail-prd-db';
const buckets = ['liferay-retail-prd-dl', 'liferay-backups', 'liferay-retail-prd-restore'];
const clone = 'retail-prd-restore-01';
const documents = new Map<string, Buffer>();

function rds(): RDSClient {
  const { endpoint, region, accessKeyId, secretAccessKey } = testbed().rds;
  return new RDSClient({ endpoint, region, credentials: { accessKeyId, secretAccessKey } });
}

const cli = cliIn(work);

/** What an earlier run on a reused test bed may have left: the seed's names are fixed. */
async function clean(): Promise<void> {
  for (const bucket of buckets) await deleteBucket(s3Client(), bucket).catch(() => undefined);
  await rds()
    .send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: snapshotId }))
    .catch(() => undefined);
  await rds()
    .send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: clone, SkipFinalSnapshot: true }))
    .catch(() => undefined);
}

const config = (): Record<string, unknown> => {
  const bed = testbed();
  const { minioStore } = testbedConfig(bed);
  process.env.LC2_E2E_AWS_KEY = 'AKIAE2E';
  process.env.LC2_E2E_AWS_SECRET = 'e2e-not-a-real-secret';
  return {
    stores: { minio: minioStore },
    projects: {
      // no provider: aws, the seeds' default
      retail: {
        aws: {
          region: bed.rds.region,
          accessKeyId: { env: 'LC2_E2E_AWS_KEY' },
          secretAccessKey: { env: 'LC2_E2E_AWS_SECRET' },
          endpoints: { rds: bed.rds.endpoint },
          restore: { instanceClass: 'db.t3.medium' },
        },
        databases: { [instance]: { database: 'lportal', user: 'backup' } },
        buckets: Object.fromEntries(buckets.map((b) => [b, 'minio'])),
      },
    },
  };
};

beforeAll(async () => {
  await clean();
  await rds()
    .send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: instance,
        Engine: 'postgres',
        EngineVersion: '15.4',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 50,
        MasterUsername: 'admin',
        MasterUserPassword: 'not-a-real-secret',
      }),
    )
    .catch((err: unknown) => {
      if ((err as Error).name !== 'DBInstanceAlreadyExistsFault') throw err;
    });
  const cfg = config();
  writeFileSync(join(work, 'lc2-backup.yaml'), JSON.stringify(cfg));
  const s3 = s3Client();
  for (const bucket of buckets.slice(0, 2)) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const store = new StoreRegistry(parseConfig(cfg, 'e2e')).get('minio');
  for (let i = 0; i < 6; i++) {
    const key =
      i === 5 ? 'document_library/20097/thumbnails/1.png' : `document_library/20097/${i}/report-${i}.pdf`;
    const body = Buffer.from(`document ${i} `.repeat(200 + i));
    documents.set(key, body);
    await store.put('liferay-retail-prd-dl', key, body, { size: body.length });
  }
  writeFileSync(
    join(work, 'restore.yaml'),
    JSON.stringify({
      apiVersion: 'backup.liferay.cloud/v1alpha1',
      kind: 'RestoreRequest',
      metadata: { name: 'retail-prd-restore-01', namespace: 'proj-retail-prd' },
      spec: {
        projectId: 'retail',
        environment: 'prd',
        source: { backupId },
        target: {
          database: { instanceId: clone },
          documentLibrary: { bucket: 'liferay-retail-prd-restore' },
        },
      },
    }),
  );
});

afterAll(async () => {
  await clean();
  rmSync(work, { recursive: true, force: true });
});

describe('seed-001 BackupRequest on the aws provider through the CLI', () => {
  it('backs up: snapshot in RDS, documents and manifest in S3, catalog row Succeeded', async () => {
    const backup = cli('backup', '-f', seed);
    expect(backup.stderr + backup.stdout).toContain(`backup ${backupId}: Succeeded`);
    expect(backup.code).toBe(0);
    expect(backup.stdout).toContain(`snapshot ${snapshotId} (53.7 GB allocated, PostgreSQL 15.4)`);

    const snap = (await rds().send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId })))
      .DBSnapshots?.[0];
    expect(snap?.Status).toBe('available');
    expect(snap?.TagList).toContainEqual({ Key: 'lc2-backup/backup-id', Value: backupId });

    const list = cli('list', '--json', '--project', 'retail');
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({
        backupId,
        state: 'Succeeded',
        provider: 'aws',
        dbType: 'snapshot',
        dbSnapshotId: snapshotId,
        crName: backupId,
        crNamespace: 'proj-retail-prd',
        dlDestinationPrefix: 'retail/prd/20251109-143000/dl',
        dlObjectCount: 5, // the thumbnail is excluded (excludeGeneratedFiles: true)
      }),
    ]);
    const describeOut = cli('describe', backupId);
    expect(describeOut.stdout).toContain(
      'manifest: liferay-backups/retail/prd/20251109-143000/manifest.json',
    );
    expect(describeOut.stdout).toContain(`database: rds-snapshot of ${instance}`);
    const verify = cli('verify', '--deep', backupId);
    expect(verify.stdout).toContain(`verify --deep ${backupId}: OK`);
  });

  it('restores the RestoreRequest into a new RDS instance and a new bucket', async () => {
    const restore = cli('restore', '-f', join(work, 'restore.yaml'));
    expect(restore.stderr + restore.stdout).toContain(`of ${backupId}: Succeeded`);
    expect(restore.code).toBe(0);
    expect(restore.stdout).toMatch(
      new RegExp(
        `${clone}/lportal \\(new instance at ${clone}\\.[a-z0-9]+\\.us-east-1\\.rds\\.amazonaws\\.com:5432\\)`,
      ),
    );
    const created = (await rds().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: clone })))
      .DBInstances?.[0];
    expect(created).toMatchObject({ DBInstanceStatus: 'available', DBInstanceClass: 'db.t3.medium' });

    const store = new StoreRegistry(parseConfig(config(), 'e2e')).get('minio');
    const restored = new Map<string, string>();
    for await (const o of listAll({ store, bucket: 'liferay-retail-prd-restore', prefix: '' }))
      restored.set(o.key, await sha256Of(await store.get('liferay-retail-prd-restore', o.key)));
    expect(restored).toEqual(
      new Map(
        [...documents]
          .filter(([k]) => !k.includes('/thumbnails/'))
          .map(([k, body]) => [k, createHash('sha256').update(body).digest('hex')]),
      ),
    );
  });
});

describe('the same seed-001 BackupRequest through the controller on the real API server', () => {
  const namespace = 'proj-retail-prd';
  const group = 'backup.liferay.cloud';
  const version = 'v1alpha1';
  let controller: Controller | undefined;
  let catalog: Catalog | undefined;

  afterAll(async () => {
    await controller?.stop();
    await catalog?.close();
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => undefined);
  });

  async function finished(
    plural: string,
    name: string,
  ): Promise<Record<string, unknown> & { state?: string }> {
    const custom = kubeConfig().makeApiClient(CustomObjectsApi);
    for (let i = 0; i < 600; i++) {
      const obj = (await custom.getNamespacedCustomObject({ group, version, namespace, plural, name })) as {
        status?: Record<string, unknown> & { state?: string };
      };
      if (obj.status?.state === 'Succeeded' || obj.status?.state === 'Failed') return obj.status;
      await sleep(200);
    }
    throw new Error(`${plural}/${name} did not finish`);
  }

  it('backs up to Succeeded (snapshot in RDS, seed status fields) and restores to a new instance', async () => {
    // start from nothing: the CLI run above left its backup, which the controller would adopt
    await clean();
    const s3 = s3Client();
    for (const bucket of buckets) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const cfg = parseConfig({ ...config(), controller: { namespace } }, 'e2e controller');
    const store = new StoreRegistry(cfg).get('minio');
    for (const [key, body] of documents)
      await store.put('liferay-retail-prd-dl', key, body, { size: body.length });
    await installCrds();
    const kc = kubeConfig();
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    catalog = await openCatalog('pglite://memory');
    controller = new Controller({
      kube: kubeClient(),
      engine: { config: cfg, catalog, stores: new StoreRegistry(cfg), log: silentLogger },
      progressIntervalMs: 200,
    });
    await controller.start();

    const custom = kc.makeApiClient(CustomObjectsApi);
    const example = parse(readFileSync(seed, 'utf8')) as Record<string, unknown>;
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'backuprequests',
      body: example,
    });
    const status = await finished('backuprequests', backupId);
    expect(status).toMatchObject({
      state: 'Succeeded',
      reason: 'BackupCompleted',
      database: { snapshotId, status: 'Succeeded' },
      documentLibrary: { objectCount: 5, status: 'Succeeded' },
    });
    const snap = (await rds().send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId })))
      .DBSnapshots?.[0];
    expect(snap?.Status).toBe('available');
    expect((await catalog.getBackup(backupId))?.provider).toBe('aws');

    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'restorerequests',
      body: {
        apiVersion: `${group}/${version}`,
        kind: 'RestoreRequest',
        metadata: { name: 'retail-prd-restore-01' },
        spec: {
          projectId: 'retail',
          environment: 'prd',
          source: { backupRequestName: backupId },
          target: {
            database: { instanceId: clone },
            documentLibrary: { bucket: 'liferay-retail-prd-restore' },
          },
        },
      },
    });
    expect(await finished('restorerequests', 'retail-prd-restore-01')).toMatchObject({
      state: 'Succeeded',
      reason: 'RestoreCompleted',
    });
    const created = (await rds().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: clone })))
      .DBInstances?.[0];
    expect(created?.DBInstanceStatus).toBe('available');
  });
});

describe('seed-001 with database.type dump on the aws provider through the CLI', () => {
  const dumpWork = mkdtempSync(join(tmpdir(), 'lc2-aws-dump-e2e-'));
  const dumpCli = cliIn(dumpWork);
  const names = {
    sourceDb: uniqueName('lportal').replace(/-/g, '_'),
    cloneDb: uniqueName('lportal_clone').replace(/-/g, '_'),
    source: uniqueName('dl'),
    backups: uniqueName('backups'),
    restore: uniqueName('restore'),
  };
  const dumpBackupId = 'retail-prd-backup-20251109-150000';

  beforeAll(async () => {
    const bed = testbed();
    const { minioStore, database } = testbedConfig(bed);
    const cfg = {
      stores: { minio: minioStore },
      projects: {
        retail: {
          aws: {
            region: bed.rds.region,
            accessKeyId: { env: 'LC2_E2E_AWS_KEY' },
            secretAccessKey: { env: 'LC2_E2E_AWS_SECRET' },
            endpoints: { rds: bed.rds.endpoint },
          },
          // the RDS instance, reached through the configured endpoint override (the test bed)
          databases: { [instance]: database(names.sourceDb) },
          buckets: Object.fromEntries([names.source, names.backups, names.restore].map((b) => [b, 'minio'])),
        },
      },
    };
    writeFileSync(join(dumpWork, 'lc2-backup.yaml'), JSON.stringify(cfg));
    await withPg('postgres', (c) => c.query(`CREATE DATABASE "${names.sourceDb}"`));
    await withPg(names.sourceDb, async (c) => {
      await c.query(`CREATE TABLE dlfileentry (id bigint PRIMARY KEY, title text NOT NULL, dlkey text NOT NULL);
        CREATE SEQUENCE counter_seq START 20097;`);
      await c.query(
        `INSERT INTO dlfileentry SELECT g, 'Report ' || g, 'document_library/20097/' || g FROM generate_series(1, 500) g`,
      );
      await c.query(`SELECT nextval('counter_seq')`);
    });
    const s3 = s3Client();
    for (const bucket of [names.source, names.backups])
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const store = new StoreRegistry(parseConfig(cfg, 'e2e dump')).get('minio');
    for (const [key, body] of documents) await store.put(names.source, key, body, { size: body.length });

    const request = parse(readFileSync(seed, 'utf8')) as {
      metadata: Record<string, unknown>;
      spec: Record<string, Record<string, unknown>>;
    };
    request.metadata = { ...request.metadata, name: dumpBackupId };
    request.spec.database = { ...request.spec.database, type: 'dump' };
    const { destinationPrefix: _prefix, ...documentLibrary } = request.spec.documentLibrary ?? {};
    request.spec.documentLibrary = {
      ...documentLibrary,
      sourceBucket: names.source,
      destinationBucket: names.backups,
    };
    writeFileSync(join(dumpWork, 'backup.yaml'), JSON.stringify(request));
    writeFileSync(
      join(dumpWork, 'restore.yaml'),
      JSON.stringify({
        apiVersion: 'backup.liferay.cloud/v1alpha1',
        kind: 'RestoreRequest',
        metadata: { name: 'retail-prd-restore-dump', namespace: 'proj-retail-prd' },
        spec: {
          projectId: 'retail',
          environment: 'prd',
          source: { backupId: dumpBackupId },
          target: {
            database: { instanceId: instance, databaseName: names.cloneDb },
            documentLibrary: { bucket: names.restore },
          },
        },
      }),
    );
  });

  afterAll(async () => {
    for (const bucket of [names.source, names.backups, names.restore])
      await deleteBucket(s3Client(), bucket).catch(() => undefined);
    await dropDatabase(names.sourceDb);
    await dropDatabase(names.cloneDb);
    rmSync(dumpWork, { recursive: true, force: true });
  });

  it('backs up with pg_dump, restores into a new database on the instance: data and documents identical', async () => {
    const backup = dumpCli('backup', '-f', join(dumpWork, 'backup.yaml'));
    expect(backup.stderr + backup.stdout).toContain(`backup ${dumpBackupId}: Succeeded`);
    expect(backup.code).toBe(0);
    const list = dumpCli('list', '--json', '--project', 'retail');
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({
        backupId: dumpBackupId,
        state: 'Succeeded',
        provider: 'aws',
        dbType: 'dump',
      }),
    ]);
    expect(dumpCli('verify', '--deep', dumpBackupId).stdout).toContain(`verify --deep ${dumpBackupId}: OK`);

    const restore = dumpCli('restore', '-f', join(dumpWork, 'restore.yaml'));
    expect(restore.stderr + restore.stdout).toContain(`of ${dumpBackupId}: Succeeded`);
    expect(restore.code).toBe(0);
    expect(await dumpText(names.cloneDb)).toBe(await dumpText(names.sourceDb));
    const store = new StoreRegistry(
      parseConfig(JSON.parse(readFileSync(join(dumpWork, 'lc2-backup.yaml'), 'utf8')), 'e2e dump'),
    ).get('minio');
    const restored = new Map<string, string>();
    for await (const o of listAll({ store, bucket: names.restore, prefix: '' }))
      restored.set(o.key, await sha256Of(await store.get(names.restore, o.key)));
    expect(restored).toEqual(
      new Map(
        [...documents]
          .filter(([k]) => !k.includes('/thumbnails/'))
          .map(([k, body]) => [k, createHash('sha256').update(body).digest('hex')]),
      ),
    );
  });
});
