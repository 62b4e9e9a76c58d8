// The engine on the AWS provider: RDS snapshots in the moto server, documents in MinIO, the
// catalog in PGlite. A snapshot backup → manifest + catalog row → verify → restore into a NEW
// instance (in the project's DB subnet group, security group and parameter group, built through
// EC2 and RDS on moto) and a new bucket; a failed backup removes its snapshot; `dump` on aws
// looks the endpoint up (or takes the configured override) for the backup and for its restore
// into a new database; no credential ever reaches an error or the catalog.
import {
  CreateDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAll, sha256Of } from '../../../src/components/documentLibrary/copy.ts';
import { parseConfig, type Config } from '../../../src/config/config.ts';
import { runBackup, type BackupResult } from '../../../src/engine/backup/backup.ts';
import type { EngineContext } from '../../../src/engine/context.ts';
import { SnapshotRegistry } from '../../../src/engine/databases.ts';
import { runRestore } from '../../../src/engine/restore/restore.ts';
import { StoreRegistry } from '../../../src/engine/stores.ts';
import type { RdsSnapshots } from '../../../src/providers/aws/rds.ts';
import type { LazySnapshots } from '../../../src/providers/lazy.ts';
import { verifyBackup } from '../../../src/engine/verify/verify.ts';
import { NotFoundError, PolicyError, ValidationError } from '../../../src/errors/index.ts';
import { testbed, uniqueName } from '../../env/fixtures.ts';
import { testbedConfig } from '../../env/testbed.ts';
import {
  backupRequest,
  dropDatabase,
  dumpText,
  generatedKeys,
  restoreRequest,
  storedHashes,
  expectedHashes,
  useApp,
} from '../engine/harness.ts';
import { createRestoreNetwork, expectedPlacement, placementOf, type RestoreNetwork } from './network.ts';

const app = useApp({ objects: 16 });
// the canary is the AWS secret key the configuration names: it must never surface
const canary = `CANARY${createHash('sha256').update(String(Date.now())).digest('hex').slice(0, 34)}`;
const instance = uniqueName('retail-prd').slice(0, 50);
const missing = `${instance}-gone`;
let ctx: EngineContext;
let config: Config;
let network: RestoreNetwork;

function rds(): RDSClient {
  const { endpoint, region, accessKeyId, secretAccessKey } = testbed().rds;
  return new RDSClient({ endpoint, region, credentials: { accessKeyId, secretAccessKey } });
}

function awsConfig(databaseHost?: string, role: { roleArn?: string; externalId?: string } = {}): Config {
  const bed = testbed();
  const { minioStore, database } = testbedConfig(bed);
  process.env.LC2_TEST_AWS_KEY = 'AKIATESTBED';
  process.env.LC2_TEST_AWS_SECRET = canary;
  const { host: _host, ...snapshotOnly } = database(app.sourceDb);
  return parseConfig(
    {
      stores: { minio: minioStore },
      projects: {
        retail: {
          provider: 'aws',
          aws: {
            region: bed.rds.region,
            accessKeyId: { env: 'LC2_TEST_AWS_KEY' },
            secretAccessKey: { env: 'LC2_TEST_AWS_SECRET' },
            endpoints: { rds: bed.rds.endpoint, sts: bed.rds.endpoint },
            ...role,
            restore: {
              instanceClass: 'db.t3.small',
              subnetGroup: network.subnetGroup,
              securityGroups: [network.securityGroupId],
              parameterGroup: network.parameterGroup,
            },
          },
          databases: {
            // no host: a snapshot needs none, a dump looks the endpoint up (or takes the override)
            [instance]: databaseHost === undefined ? snapshotOnly : database(app.sourceDb),
            [missing]: snapshotOnly,
          },
          buckets: { [app.sourceBucket]: 'minio', [app.backupBucket]: 'minio', [app.cloneBucket]: 'minio' },
        },
      },
    },
    'aws test configuration',
  );
}

function contextFor(cfg: Config): EngineContext {
  return {
    ...app.ctx,
    config: cfg,
    stores: new StoreRegistry(cfg),
    snapshots: new SnapshotRegistry(cfg, { pollDelayMs: { initial: 20, max: 100 } }),
  };
}

/**
 * A context whose clock runs `days` ahead: a restore's id is its project, environment and start
 * second, so two restores of this file that start in the same second would share one id (the
 * catalog refuses the second). Each restore test gets a clock of its own.
 */
function clockAhead(base: EngineContext, days: number): EngineContext {
  return { ...base, now: () => new Date(Date.now() + days * 86_400_000) };
}

function snapshotRequest(name?: string): ReturnType<typeof backupRequest> {
  return backupRequest(app, { database: { type: 'snapshot', instanceId: instance } }, name);
}

beforeAll(async () => {
  await rds().send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: instance,
      Engine: 'postgres',
      EngineVersion: '15.4',
      DBInstanceClass: 'db.t3.micro',
      AllocatedStorage: 20,
      MasterUsername: 'admin',
      MasterUserPassword: 'not-a-real-secret',
    }),
  );
  network = await createRestoreNetwork(uniqueName('retail'));
  config = awsConfig();
  ctx = contextFor(config);
});

describe('engine on the aws provider (RDS on moto, S3 on MinIO)', () => {
  let backup: BackupResult;

  it('takes a snapshot backup: tagged snapshot, documents, manifest and catalog row', async () => {
    const phases: string[] = [];
    backup = await runBackup({ ...ctx, onProgress: (p) => phases.push(p.phase ?? '') }, snapshotRequest());
    const { header } = backup;
    expect(header.provider).toBe('aws');
    expect(header.database).toMatchObject({
      type: 'rds-snapshot',
      instanceId: instance,
      snapshotId: `lc2-${header.backupId}`,
      engine: 'postgres',
      engineVersion: '15.4',
      size: 20 * 1024 ** 3,
    });
    expect(header.database.artifact).toBeUndefined();
    expect(phases.indexOf('database')).toBeLessThan(phases.indexOf('documentLibrary'));
    const originals = [...app.objects.keys()].filter((k) => !generatedKeys(k));
    expect(header.documentLibrary.objectCount).toBe(originals.length);

    const snapshot = await ctx.snapshots?.get('retail').getSnapshot(`lc2-${header.backupId}`);
    expect(snapshot?.tags).toEqual({
      'lc2-backup/project': 'retail',
      'lc2-backup/environment': 'prd',
      'lc2-backup/backup-id': header.backupId,
      'lc2-backup/managed-by': 'lc2-backup',
    });
    expect(await app.catalog.getBackup(header.backupId)).toMatchObject({
      state: 'Succeeded',
      provider: 'aws',
      dbType: 'snapshot',
      dbInstanceId: instance,
      dbSnapshotId: `lc2-${header.backupId}`,
      dbSnapshotSizeBytes: 20 * 1024 ** 3,
    });
  });

  it('verifies the backup, the snapshot included, and adopts it when the request runs again', async () => {
    const report = await verifyBackup(ctx, backup.header.backupId, { deep: true });
    expect(report.problems).toEqual([]);
    const again = await runBackup(ctx, snapshotRequest(backup.header.backupId));
    expect(again.adopted).toBe(true);
  });

  it('restores into a NEW instance (class, subnet group, security group, parameter group) and a new bucket', async () => {
    const clone = `${instance}-clone`;
    const request = restoreRequest(backup.header.backupId, {
      databaseName: 'unused',
      bucket: app.cloneBucket,
    });
    const { databaseName: _unused, ...database } = request.spec.target.database;
    request.spec.target.database = { ...database, instanceId: clone };
    const result = await runRestore(ctx, request);
    expect(result.database).toMatchObject({ instanceId: clone, databaseName: app.sourceDb });
    expect(result.database.endpoint?.port).toBe(5432);

    const raw = (await rds().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: clone })))
      .DBInstances?.[0];
    expect(await placementOf(clone)).toEqual(expectedPlacement(network, 'db.t3.small'));
    expect(raw?.TagList).toContainEqual({ Key: 'lc2-backup/restore-id', Value: result.restoreId });

    const restored = new Map<string, string>();
    for await (const o of listAll({ store: app.store, bucket: app.cloneBucket, prefix: '' }))
      restored.set(o.key, await sha256Of(await app.store.get(app.cloneBucket, o.key)));
    const expected = new Map(
      [...app.objects]
        .filter(([k]) => !generatedKeys(k))
        .map(([k, body]) => [k, createHash('sha256').update(body).digest('hex')]),
    );
    expect(restored).toEqual(expected);
    expect(await app.catalog.getRestore(result.restoreId)).toMatchObject({
      state: 'Succeeded',
      targetDbInstanceId: clone,
    });
  });

  it("refuses restore targets outside the project's name space or over a live instance", async () => {
    const to = (instanceId: string): ReturnType<typeof restoreRequest> => {
      const request = restoreRequest(backup.header.backupId, {
        databaseName: 'x',
        bucket: app.cloneBucket,
        prefix: 'again',
      });
      const { databaseName: _x, ...database } = request.spec.target.database;
      request.spec.target.database = { ...database, instanceId };
      return request;
    };
    await expect(runRestore(ctx, to('other-clone'))).rejects.toThrow(
      new PolicyError(
        'spec.target.database.instanceId: "other-clone" must start with "retail-": a restore creates instances only in its project\'s name space',
      ),
    );
    await expect(runRestore(ctx, to(instance))).rejects.toThrow(ValidationError);
    await expect(runRestore(ctx, to(instance))).rejects.toThrow(/is a configured \(live\) instance/);
  });

  it('reports a snapshot deleted outside lc2-backup when verifying', async () => {
    const second = await runBackup(ctx, snapshotRequest('retail-prd-backup-20250102-030405'));
    await rds().send(
      new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: second.header.database.snapshotId }),
    );
    const report = await verifyBackup(ctx, second.header.backupId);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      {
        object: expect.stringMatching(
          new RegExp(`^rds://127\\.0\\.0\\.1:\\d+/lc2-${second.header.backupId}$`),
        ) as unknown,
        problem: 'database snapshot is missing (deleted outside lc2-backup?)',
      },
    ]);
  });

  it('removes the snapshot of a backup that fails after the database step', async () => {
    const controller = new AbortController();
    const name = 'retail-prd-backup-20250102-040506';
    const failing = runBackup(
      {
        ...ctx,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === 'database' && p.bytesDone === 20 * 1024 ** 3)
            controller.abort(new Error('stopped by the test'));
        },
      },
      snapshotRequest(name),
    );
    await expect(failing).rejects.toThrow('stopped by the test');
    expect(await ctx.snapshots?.get('retail').getSnapshot(`lc2-${name}`)).toBeUndefined();
    expect(await app.catalog.getBackup(name)).toMatchObject({ state: 'Failed' });
  });

  it("assumes the project's role (aws.roleArn, externalId; STS at aws.endpoints.sts) for its RDS calls", async () => {
    const roleCtx = contextFor(
      awsConfig(undefined, {
        roleArn: 'arn:aws:iam::123456789012:role/lc2-backup-retail',
        externalId: 'retail-7f3a',
      }),
    );
    const provider = await (roleCtx.snapshots?.get('retail') as LazySnapshots<RdsSnapshots>).load();
    expect((await provider.describeInstance(instance)).status).toBe('available');
    // moto's STS handed out temporary credentials; the configured keys only signed AssumeRole
    const identity = await provider.client.config.credentials();
    expect(identity.accessKeyId).toMatch(/^ASIA/);
    expect(identity.secretAccessKey).not.toBe(canary);
    expect(identity.sessionToken).toBeTruthy();
  });

  it('names a missing RDS instance, and no credential reaches the error or the catalog', async () => {
    const name = 'retail-prd-backup-20250102-050607';
    const error = (await runBackup(
      ctx,
      backupRequest(app, { database: { type: 'snapshot', instanceId: missing } }, name),
    ).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toMatch(
      new RegExp(
        `^spec\\.database\\.instanceId: describing RDS instance "${missing}": the instance does not exist in rds://`,
      ),
    );
    const row = await app.catalog.getBackup(name);
    expect(row?.state).toBe('Failed');
    for (const text of [error.message, String(error), JSON.stringify(row)])
      expect(text).not.toContain(canary);
  });
});

describe('dump on the aws provider', () => {
  const dumpBackupId = 'retail-prd-backup-20250103-020202';
  const cloneDb = uniqueName('aws_dump_clone').replace(/-/g, '_');
  afterAll(async () => {
    await dropDatabase(cloneDb);
  });

  /** A RestoreRequest of the dump backup into a new database on the project's instance. */
  function dumpRestore(databaseName: string, prefix: string): ReturnType<typeof restoreRequest> {
    const request = restoreRequest(dumpBackupId, { databaseName, bucket: app.cloneBucket, prefix });
    request.spec.target.database = { instanceId: instance, databaseName };
    return request;
  }

  it('looks the endpoint up with DescribeDBInstances when no host is configured', async () => {
    const error = (await runBackup(
      ctx,
      backupRequest(
        app,
        { database: { type: 'dump', instanceId: instance } },
        'retail-prd-backup-20250103-010101',
      ),
    ).catch((e: unknown) => e)) as Error;
    // moto's endpoint is a name that does not resolve: the error shows it was looked up
    expect(error.message).toMatch(
      new RegExp(
        `database instance "${instance}" \\(.*@${instance}\\.[a-z0-9]+\\.us-east-1\\.rds\\.amazonaws\\.com:5432/`,
      ),
    );
    expect(error.message).not.toContain(canary);
  });

  it('dumps through the configured endpoint override (the test bed PostgreSQL), verified deep', async () => {
    const dumpCtx = contextFor(awsConfig(testbed().postgres.host));
    const result = await runBackup(
      dumpCtx,
      backupRequest(app, { database: { type: 'dump', instanceId: instance } }, dumpBackupId),
    );
    expect(result.header).toMatchObject({
      provider: 'aws',
      database: { type: 'pg-dump', instanceId: instance },
    });
    expect(result.header.database.engineVersion).toMatch(/^15\./);
    expect((await verifyBackup(dumpCtx, result.header.backupId, { deep: true })).problems).toEqual([]);
    expect(await app.catalog.getBackup(result.header.backupId)).toMatchObject({
      provider: 'aws',
      dbType: 'dump',
    });
  });

  it("restores the dump into a NEW database on the instance's endpoint, found with DescribeDBInstances", async () => {
    // no host configured: the restore asks RDS (moto) for the endpoint; moto's name does not
    // resolve, so the connection error carries the looked-up endpoint, and nothing is left behind
    const name = `${cloneDb}_lookup`;
    const error = (await runRestore(clockAhead(ctx, 1), dumpRestore(name, 'lookup')).catch(
      (e: unknown) => e,
    )) as Error;
    expect(error.message).toMatch(
      new RegExp(
        `database instance "${instance}" \\(.*@${instance}\\.[a-z0-9]+\\.us-east-1\\.rds\\.amazonaws\\.com:5432/${name}\\)`,
      ),
    );
    const restores = await app.catalog.listRestores({ backupId: dumpBackupId });
    expect(restores.map((r) => [r.targetDatabase, r.state])).toEqual([[name, 'Failed']]);
    for (const text of [error.message, String(error), JSON.stringify(error), JSON.stringify(restores)]) {
      expect(text).not.toContain(canary);
      expect(text).not.toContain(testbed().postgres.password);
    }
    expect(await storedHashes(app.store, app.cloneBucket, 'lookup/')).toEqual(new Map());
  });

  it('restores the dump into a NEW database through the endpoint override: data and documents identical', async () => {
    const restoreCtx = clockAhead(contextFor(awsConfig(testbed().postgres.host)), 2);
    const result = await runRestore(restoreCtx, dumpRestore(cloneDb, 'dump'));
    expect(result.database).toEqual({ instanceId: instance, databaseName: cloneDb });
    expect(await dumpText(cloneDb)).toBe(await dumpText(app.sourceDb));
    const restored = await storedHashes(app.store, app.cloneBucket, 'dump/');
    expect(new Map([...restored].map(([k, v]) => [k.replace(/^dump\//, ''), v]))).toEqual(
      expectedHashes(app),
    );
    expect(await app.catalog.getRestore(result.restoreId)).toMatchObject({
      state: 'Succeeded',
      targetDbInstanceId: instance,
      targetDatabase: cloneDb,
    });
    // the live database is never the target: a second restore into the same name is refused
    await expect(runRestore(restoreCtx, dumpRestore(cloneDb, 'again'))).rejects.toThrow(
      `spec.target.database.databaseName: database "${cloneDb}" already exists on instance "${instance}"; restores go into a new database: choose another name`,
    );
  });
});
