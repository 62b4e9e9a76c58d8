// Role assumption for S3 stores (stores.<s>.roleArn / externalId / stsEndpoint), on MinIO's own
// STS AssumeRole endpoint: a MinIO user whose policy lets ONLY assumed-role sessions touch its
// buckets (condition aws:principaltype = AssumedRole), so a request signed with the user's
// long-term keys is refused and every S3 call that succeeds was signed with the temporary
// credentials AssumeRole returned. The whole ObjectStore contract runs on such a store.
//
// What MinIO does not model: it ignores RoleArn, RoleSessionName and ExternalId (the session's
// permissions are the calling user's policies); a trust policy and its sts:ExternalId condition
// are AWS IAM behaviour, not proven here (docs/providers/aws.md).
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeObjectStoreConformance } from '../../conformance/objectStore.ts';
import { parseConfig } from '../../../src/config/config.ts';
import { StoreRegistry } from '../../../src/engine/stores.ts';
import { awsS3Store, type AwsS3StoreOptions } from '../../../src/providers/aws/s3.ts';
import { deleteBucket, s3Client, testbed, uniqueName } from '../../env/fixtures.ts';
import { addPolicy, addUser, removePolicy, removeUser, type MinioRoot } from './minioAdmin.ts';

const MiB = 1024 * 1024;
const roleArn = 'arn:aws:iam::123456789012:role/lc2-backup-retail';
const externalId = 'retail-7f3a';
// every bucket of this file starts with the prefix the user's policy names
const prefix = uniqueName('role');
const buckets = {
  main: `${prefix}-main`,
  engine: `${prefix}-engine`,
  conformance: `${prefix}-conf`,
  conformanceOther: `${prefix}-conf-other`,
};
const user = {
  accessKeyId: `lc2role${randomBytes(6).toString('hex')}`,
  secretAccessKey: `CANARY${randomBytes(20).toString('hex')}`,
  policy: `${prefix}-assumed-only`,
};

function root(): MinioRoot {
  const { endpoint, region, accessKeyId, secretAccessKey } = testbed().s3;
  return { endpoint, region, accessKeyId, secretAccessKey };
}

function userStore(overrides: Partial<AwsS3StoreOptions> = {}): ReturnType<typeof awsS3Store> {
  const { endpoint, region } = testbed().s3;
  return awsS3Store({
    storeName: 's3-retail',
    endpoint,
    region,
    keys: { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey },
    roleArn,
    externalId,
    stsEndpoint: endpoint,
    concurrency: 4,
    multipartCopyThreshold: 6 * MiB,
    partSize: 5 * MiB,
    ...overrides,
  });
}

beforeAll(async () => {
  const s3 = s3Client();
  await addPolicy(root(), user.policy, {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['s3:*'],
        Resource: [`arn:aws:s3:::${prefix}-*`, `arn:aws:s3:::${prefix}-*/*`],
        Condition: { StringEquals: { 'aws:principaltype': ['AssumedRole'] } },
      },
    ],
  });
  await addUser(root(), user);
  for (const bucket of Object.values(buckets)) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
});

afterAll(async () => {
  for (const bucket of Object.values(buckets)) await deleteBucket(s3Client(), bucket).catch(() => undefined);
  await removeUser(root(), user.accessKeyId).catch(() => undefined);
  await removePolicy(root(), user.policy).catch(() => undefined);
});

describe('S3 store with an assumed role (MinIO STS)', () => {
  it("refuses the user's long-term keys: only the assumed role's session may use the bucket", async () => {
    const { endpoint, region } = testbed().s3;
    const direct = new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey },
    });
    await expect(
      direct.send(new PutObjectCommand({ Bucket: buckets.main, Key: 'direct.txt', Body: 'x' })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    // the same keys without a role, through the store: refused too
    const noRole = userStore({ roleArn: undefined, externalId: undefined, stsEndpoint: undefined });
    await expect(noRole.put(buckets.main, 'direct.txt', Buffer.from('x'), { size: 1 })).rejects.toThrow(
      /AccessDenied|access denied/i,
    );
  });

  it('signs every request with the temporary credentials AssumeRole returned (session token, expiry)', async () => {
    const store = userStore();
    const body = randomBytes(4096);
    await store.put(buckets.main, 'assumed/one.bin', body, { size: body.length });
    const identity = await store.client.config.credentials();
    expect(identity.accessKeyId).not.toBe(user.accessKeyId);
    expect(identity.secretAccessKey).not.toBe(user.secretAccessKey);
    expect(identity.sessionToken).toBeTruthy();
    expect(identity.expiration?.getTime()).toBeGreaterThan(Date.now());

    // those exact temporary credentials read the object; the long-term keys cannot
    const { endpoint, region } = testbed().s3;
    const temporary = new S3Client({ endpoint, region, forcePathStyle: true, credentials: identity });
    const got = await temporary.send(new GetObjectCommand({ Bucket: buckets.main, Key: 'assumed/one.bin' }));
    const bytes = await got.Body?.transformToByteArray();
    expect(Buffer.from(bytes ?? []).equals(body)).toBe(true);
    const withoutToken = new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId: identity.accessKeyId, secretAccessKey: identity.secretAccessKey },
    });
    await expect(
      withoutToken.send(new GetObjectCommand({ Bucket: buckets.main, Key: 'assumed/one.bin' })),
    ).rejects.toMatchObject({ name: 'InvalidTokenId' }); // the session token is part of the credentials
  });

  it('takes the role, external id and STS endpoint from the configuration (stores.<s>)', async () => {
    const { endpoint } = testbed().s3;
    process.env.LC2_TEST_ROLE_KEY = user.accessKeyId;
    process.env.LC2_TEST_ROLE_SECRET = user.secretAccessKey;
    const config = parseConfig(
      {
        stores: {
          's3-retail': {
            type: 's3',
            endpoint,
            accessKeyId: { env: 'LC2_TEST_ROLE_KEY' },
            secretAccessKey: { env: 'LC2_TEST_ROLE_SECRET' },
            roleArn,
            externalId,
            stsEndpoint: endpoint,
          },
        },
        projects: {
          retail: { provider: 'local', buckets: { [buckets.engine]: 's3-retail' } },
        },
      },
      'role test configuration',
    );
    const store = new StoreRegistry(config).get('s3-retail');
    const body = randomBytes(2048);
    const put = await store.put(buckets.engine, 'a/b.bin', body, { size: body.length });
    await store.copy(buckets.engine, 'a/b.bin', buckets.engine, 'c/d.bin', { size: body.length });
    const page = await store.list(buckets.engine, '');
    expect(page.objects.map((o) => o.key)).toEqual(['a/b.bin', 'c/d.bin']);
    expect((await store.head(buckets.engine, 'c/d.bin'))?.sha256).toBe(put.sha256);
    await store.delete(buckets.engine, 'a/b.bin');
    expect((await store.list(buckets.engine, '')).objects.map((o) => o.key)).toEqual(['c/d.bin']);
  });

  it('names the store and the role when AssumeRole is refused, never the secret', async () => {
    const store = userStore({
      storeName: 's3-retail',
      keys: { accessKeyId: user.accessKeyId, secretAccessKey: `${user.secretAccessKey}x` },
    });
    const error = (await store.list(buckets.main, '').catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(
      /stores\.s3-retail: cannot get AWS credentials from role arn:aws:iam::123456789012:role\/lc2-backup-retail \(with its external id\)/,
    );
    expect(error.message).not.toContain(user.secretAccessKey);
    expect(JSON.stringify(error)).not.toContain(user.secretAccessKey);
  });
});

describeObjectStoreConformance(
  'awsS3Store with an assumed role on MinIO',
  () => {
    const newBucket = `${prefix}-new`;
    return Promise.resolve({
      store: userStore(),
      bucket: buckets.conformance,
      otherBucket: buckets.conformanceOther,
      newBucket,
      cleanup: () => deleteBucket(s3Client(), newBucket).catch(() => undefined),
    });
  },
  { partSize: 5 * MiB, sha256: { put: true, copy: true, head: true }, prefixCollisions: false },
);
