// moto smoke test: the RDS calls the AWS provider makes, against the real AWS SDK.
import {
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { testbed, uniqueName } from '../../env/fixtures.ts';

describe('moto (RDS)', () => {
  it('creates an instance, snapshots it with tags and reports the snapshot available', async () => {
    const { endpoint, region, accessKeyId, secretAccessKey } = testbed().rds;
    const rds = new RDSClient({ endpoint, region, credentials: { accessKeyId, secretAccessKey } });
    const instance = uniqueName('db');
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: instance,
        Engine: 'postgres',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 20,
        MasterUsername: 'admin',
        MasterUserPassword: 'not-a-real-secret',
      }),
    );
    const snapshot = `${instance}-snap`;
    await rds.send(
      new CreateDBSnapshotCommand({
        DBInstanceIdentifier: instance,
        DBSnapshotIdentifier: snapshot,
        Tags: [{ Key: 'lc2-backup/project', Value: 'retail' }],
      }),
    );
    let status = '';
    for (let i = 0; i < 40 && status !== 'available'; i++) {
      const got = await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshot }));
      const snap = got.DBSnapshots?.[0];
      status = snap?.Status ?? '';
      expect(snap?.TagList).toContainEqual({ Key: 'lc2-backup/project', Value: 'retail' });
      if (status !== 'available') await sleep(250);
    }
    expect(status).toBe('available');
  });
});
