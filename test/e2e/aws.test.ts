// The seed-001 example BackupRequest, unchanged, through the CLI on the aws provider (defaulted:
// the request names none and neither does the project): RDS snapshot in moto, documents and
// manifest in MinIO, catalog row Succeeded; then a RestoreRequest → a NEW instance in moto and
// a new bucket in MinIO holding the same documents.
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
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliIn } from '../env/runCli.ts';
import { listAll, sha256Of } from '../../src/components/documentLibrary/copy.ts';
import { StoreRegistry } from '../../src/engine/stores.ts';
import { parseConfig } from '../../src/config/config.ts';
import { deleteBucket, s3Client, testbed } from '../env/fixtures.ts';
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
