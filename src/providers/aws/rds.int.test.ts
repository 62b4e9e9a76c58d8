// RdsSnapshots against the moto server's RDS API, through the real AWS SDK: snapshots with
// ownership tags, adoption on retry, refusals of other projects' resources before any change,
// waits, deletion, restores into a new instance (in a DB subnet group over EC2 subnets, with
// security and parameter groups), the errors users meet; role assumption through moto's STS.
import { CreateDBInstanceCommand, DescribeDBSnapshotsCommand, RDSClient } from '@aws-sdk/client-rds';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testbed, uniqueName } from '../../../test/env/fixtures.ts';
import { motoServer } from '../../../test/env/peers.ts';
import { startProcess, stopProcess, waitReady } from '../../../test/env/process.ts';
import { freePort } from '../../../test/env/testbed.ts';
import {
  createRestoreNetwork,
  expectedPlacement,
  placementOf,
} from '../../../test/integration/aws/network.ts';
import { NotFoundError, PolicyError, ValidationError } from '../../errors/index.ts';
import { ownershipTags } from '../types.ts';
import { awsCredentials } from './credentials.ts';
import { RdsSnapshots, type RdsSnapshotsOptions } from './rds.ts';

function keys(): { accessKeyId: string; secretAccessKey: string } {
  const { accessKeyId, secretAccessKey } = testbed().rds;
  return { accessKeyId, secretAccessKey };
}

function rdsClient(endpoint = testbed().rds.endpoint): RDSClient {
  return new RDSClient({ endpoint, region: 'us-east-1', credentials: keys() });
}

function snapshots(overrides: Partial<RdsSnapshotsOptions> = {}): RdsSnapshots {
  return new RdsSnapshots({
    projectId: 'retail',
    region: 'us-east-1',
    endpoint: testbed().rds.endpoint,
    credentials: () => Promise.resolve(keys()),
    restore: { securityGroups: [] },
    pollDelayMs: { initial: 20, max: 100 },
    ...overrides,
  });
}

async function createInstance(id: string, endpoint?: string): Promise<void> {
  await rdsClient(endpoint).send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: id,
      Engine: 'postgres',
      EngineVersion: '15.4',
      DBInstanceClass: 'db.t3.micro',
      AllocatedStorage: 20,
      MasterUsername: 'admin',
      MasterUserPassword: 'not-a-real-secret',
    }),
  );
}

const tags = (backupId: string, project = 'retail'): Record<string, string> => ({
  [ownershipTags.project]: project,
  [ownershipTags.environment]: 'prd',
  [ownershipTags.backupId]: backupId,
  [ownershipTags.managedBy]: 'lc2-backup',
});

describe('RdsSnapshots on moto', () => {
  const instance = uniqueName('retail-db');
  const snapshotId = `lc2-${instance}-backup-20251109-143000`;
  const backupId = `${instance}-backup-20251109-143000`;

  it('describes an instance: engine, version, endpoint, storage', async () => {
    await createInstance(instance);
    const found = await snapshots().describeInstance(instance);
    expect(found).toMatchObject({
      instanceId: instance,
      status: 'available',
      engine: 'postgres',
      engineVersion: '15.4',
      allocatedBytes: 20 * 1024 ** 3,
    });
    expect(found.endpoint?.port).toBe(5432);
  });

  it('names a missing instance, the region setting and what to check', async () => {
    const rds = snapshots();
    const error = await rds.describeInstance('retail-missing-db').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toMatch(
      /RDS instance "retail-missing-db".*does not exist in rds:\/\/127\.0\.0\.1:\d+; check the instance id and projects\.retail\.aws\.region/,
    );
    await expect(
      rds.createSnapshot({ instanceId: 'retail-missing-db', snapshotId: 'lc2-x', tags: tags('x') }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('takes a tagged snapshot, waits for it with progress, and records size and engine version', async () => {
    const rds = snapshots();
    const { snapshot, adopted } = await rds.createSnapshot({
      instanceId: instance,
      snapshotId,
      tags: tags(backupId),
    });
    expect(adopted).toBe(false);
    expect(snapshot.snapshotId).toBe(snapshotId);
    const progress: number[] = [];
    const ready = await rds.waitForSnapshot(snapshotId, { onProgress: (p) => progress.push(p) });
    expect(ready).toMatchObject({
      status: 'available',
      instanceId: instance,
      engineVersion: '15.4',
      sizeBytes: 20 * 1024 ** 3,
      tags: tags(backupId),
    });
    expect(progress.at(-1)).toBe(100);
  });

  it('adopts its own snapshot on a retry instead of taking a second one', async () => {
    const again = await snapshots().createSnapshot({
      instanceId: instance,
      snapshotId,
      tags: tags(backupId),
    });
    expect(again.adopted).toBe(true);
    const all = await rdsClient().send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: instance }));
    // moto also keeps an automated snapshot of the new instance; ours is the one manual snapshot
    const manual = all.DBSnapshots?.filter((s) => s.SnapshotType === 'manual');
    expect(manual?.map((s) => s.DBSnapshotIdentifier)).toEqual([snapshotId]);
  });

  it("refuses another project's or another backup's snapshot before any change", async () => {
    const other = snapshots({ projectId: 'other' });
    await expect(
      other.createSnapshot({ instanceId: instance, snapshotId, tags: tags(backupId, 'other') }),
    ).rejects.toThrow(
      new PolicyError(
        `RDS snapshot "${snapshotId}" belongs to project "retail", not "other"; it is left alone`,
      ),
    );
    await expect(other.deleteSnapshot(snapshotId)).rejects.toBeInstanceOf(PolicyError);
    await expect(
      other.restoreInstance({ snapshotId, instanceId: 'other-clone', tags: tags(backupId, 'other') }),
    ).rejects.toBeInstanceOf(PolicyError);
    await expect(
      snapshots().createSnapshot({ instanceId: instance, snapshotId, tags: tags('retail-prd-backup-other') }),
    ).rejects.toThrow(/already exists for instance .* and backup .*, not this request's/);
    // still there, untouched
    expect((await snapshots().getSnapshot(snapshotId))?.status).toBe('available');
  });

  it('restores into a NEW instance in the configured subnet group, security groups and parameter group', async () => {
    // the network as an account has it: VPC + subnets (EC2), DB subnet group, parameter group
    const network = await createRestoreNetwork(uniqueName('retail'));
    const rds = snapshots({
      restore: {
        instanceClass: 'db.t3.large',
        subnetGroup: network.subnetGroup,
        securityGroups: [network.securityGroupId],
        parameterGroup: network.parameterGroup,
      },
    });
    const clone = `${instance}-clone`;
    const restoreTags = { ...tags(backupId), [ownershipTags.restoreId]: 'r1' };
    const { adopted } = await rds.restoreInstance({ snapshotId, instanceId: clone, tags: restoreTags });
    expect(adopted).toBe(false);
    const ready = await rds.waitForInstance(clone);
    expect(ready.status).toBe('available');
    expect(ready.tags).toEqual(restoreTags);
    expect(await placementOf(clone)).toEqual(expectedPlacement(network, 'db.t3.large'));
    // the source instance is untouched: it stays where it was created
    expect(await placementOf(instance)).toMatchObject({ instanceClass: 'db.t3.micro', subnetIds: [] });

    // a retried restore adopts its instance; a live instance is never restored over
    expect((await rds.restoreInstance({ snapshotId, instanceId: clone, tags: restoreTags })).adopted).toBe(
      true,
    );
    await expect(
      rds.restoreInstance({ snapshotId, instanceId: instance, tags: restoreTags }),
    ).rejects.toThrow(
      new ValidationError(
        `spec.target.database.instanceId: RDS instance "${instance}" already exists; restores go into a NEW instance: choose another id`,
      ),
    );

    // only instances a restore created are ever deleted
    await expect(rds.deleteRestoredInstance(instance)).rejects.toBeInstanceOf(PolicyError);
    await rds.deleteRestoredInstance(clone);
    await expect(rds.describeInstance(clone)).rejects.toBeInstanceOf(NotFoundError);
    await rds.deleteRestoredInstance(clone); // idempotent
  });

  it('names the configuration field of a restore setting that does not exist', async () => {
    const rds = snapshots({ restore: { subnetGroup: 'no-such-subnets', securityGroups: [] } });
    await expect(
      rds.restoreInstance({ snapshotId, instanceId: `${instance}-c2`, tags: tags(backupId) }),
    ).rejects.toThrow(
      new ValidationError(
        `restoring RDS snapshot "${snapshotId}" into new instance "${instance}-c2": projects.retail.aws.restore.subnetGroup "no-such-subnets" does not exist in us-east-1; fix the name (DBSubnetGroupNotFound)`,
      ),
    );
  });

  it('deletes its snapshot, idempotently; a restore of it then says it is gone', async () => {
    const rds = snapshots();
    await rds.deleteSnapshot(snapshotId);
    expect(await rds.getSnapshot(snapshotId)).toBeUndefined();
    await rds.deleteSnapshot(snapshotId);
    await expect(
      rds.restoreInstance({ snapshotId, instanceId: `${instance}-c3`, tags: tags(backupId) }),
    ).rejects.toThrow(/RDS snapshot ".*" does not exist in rds:\/\/.*; it was deleted \(retention\?\)/);
  });
});

describe('RDS snapshot quota (a moto server of its own, room for one manual snapshot)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lc2-moto-quota-'));
  let stop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await stop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says the quota is used up and what to do', async () => {
    const port = await freePort();
    const proc = startProcess('moto-quota', await motoServer(), ['-H', '127.0.0.1', '-p', String(port)], {
      logDir: dir,
      // moto counts the instance's automated snapshot too: two leave room for one of ours
      env: { ...process.env, MOTO_RDS_SNAPSHOT_LIMIT: '2' },
    });
    stop = () => stopProcess(proc);
    const endpoint = `http://127.0.0.1:${port}`;
    await waitReady(proc, async () => (await fetch(`${endpoint}/moto-api/data.json`)).ok);
    await createInstance('retail-quota-db', endpoint);
    const rds = snapshots({ endpoint });
    await rds.createSnapshot({ instanceId: 'retail-quota-db', snapshotId: 'lc2-first', tags: tags('first') });
    await expect(
      rds.createSnapshot({ instanceId: 'retail-quota-db', snapshotId: 'lc2-second', tags: tags('second') }),
    ).rejects.toThrow(
      /creating RDS snapshot "lc2-second" of instance "retail-quota-db": the account's manual snapshot quota in us-east-1 is used up; delete old snapshots \(shorten retention\) or ask AWS for a higher quota \(SnapshotQuotaExceeded\)/,
    );
  });
});

describe('AWS credentials', () => {
  it('assumes the configured role through STS (with the external id) and uses it for RDS', async () => {
    const { endpoint } = testbed().rds;
    const base = keys();
    const provider = awsCredentials({
      region: 'us-east-1',
      keys: base,
      roleArn: 'arn:aws:iam::123456789012:role/lc2-backup-retail',
      externalId: 'retail-7f3a',
      stsEndpoint: endpoint,
      sessionName: 'lc2-backup-retail',
      what: 'projects.retail.aws',
    });
    const identity = await provider();
    // temporary credentials from AssumeRole, not the base keys, and they expire (so refresh)
    expect(identity.accessKeyId).toMatch(/^ASIA/);
    expect(identity.accessKeyId).not.toBe(base.accessKeyId);
    expect(identity.sessionToken).toBeTruthy();
    expect(identity.expiration?.getTime()).toBeGreaterThan(Date.now());
    const rds = snapshots({ credentials: provider });
    await expect(rds.describeInstance('retail-nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('names the role when it cannot be assumed, never the secret key', async () => {
    const canary = 'CANARYsecretKEY0123456789abcdefghijklmnop';
    const provider = awsCredentials({
      region: 'us-east-1',
      keys: { accessKeyId: 'AKIACANARY', secretAccessKey: canary },
      roleArn: 'arn:aws:iam::123456789012:role/lc2-backup-retail',
      stsEndpoint: 'http://127.0.0.1:9',
      sessionName: 'lc2-backup-retail',
      what: 'projects.retail.aws',
    });
    const rds = snapshots({ credentials: provider, maxAttempts: 1 });
    const error = (await rds.describeInstance('retail-db').catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(
      /projects\.retail\.aws: cannot get AWS credentials from role arn:aws:iam::123456789012:role\/lc2-backup-retail/,
    );
    expect(error.message).not.toContain(canary);
    expect(JSON.stringify(error)).not.toContain(canary);
  });
});
