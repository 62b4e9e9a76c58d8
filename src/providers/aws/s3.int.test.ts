// The S3 store as configured for AWS (awsS3Store), against MinIO through the same conformance
// suite as every store, plus what the AWS configuration adds: addressing style by endpoint,
// adaptive SDK retries, and throttling reported as ThrottledError (a real HTTP server answering
// SlowDown, not a mocked SDK).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { deleteBucket, s3Client, testbed, uniqueName, useBucket } from '../../../test/env/fixtures.ts';
import { describeObjectStoreConformance } from '../../../test/conformance/objectStore.ts';
import { ThrottledError } from '../../errors/index.ts';
import { awsS3Store, type AwsS3StoreOptions } from './s3.ts';

const MiB = 1024 * 1024;
const bucket = useBucket('awss3');
const other = useBucket('awss3-other');

function minio(overrides: Partial<AwsS3StoreOptions> = {}): AwsS3StoreOptions {
  const { s3 } = testbed();
  return {
    storeName: 'minio',
    endpoint: s3.endpoint,
    region: s3.region,
    keys: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    concurrency: 4,
    multipartCopyThreshold: 6 * MiB,
    partSize: 5 * MiB,
    ...overrides,
  };
}

describeObjectStoreConformance(
  'awsS3Store on MinIO',
  () => {
    const newBucket = uniqueName('awss3-new');
    return Promise.resolve({
      store: awsS3Store(minio()),
      bucket: bucket.name,
      otherBucket: other.name,
      newBucket,
      cleanup: () => deleteBucket(s3Client(), newBucket).catch(() => undefined),
    });
  },
  { partSize: 5 * MiB, sha256: { put: true, copy: true, head: true }, prefixCollisions: false },
);

describe('awsS3Store', () => {
  it('addresses buckets path-style on a custom endpoint and virtual-hosted on AWS S3', async () => {
    expect(awsS3Store(minio()).client.config.forcePathStyle).toBe(true);
    const aws = awsS3Store({ storeName: 's3', region: 'eu-west-1', concurrency: 16 });
    expect(aws.client.config.forcePathStyle).toBe(false);
    expect(aws.name).toBe('s3://s3.eu-west-1.amazonaws.com');
    expect(awsS3Store(minio({ forcePathStyle: false })).client.config.forcePathStyle).toBe(false);
    expect(await aws.client.config.retryStrategy()).toMatchObject({ mode: 'adaptive' });
  });

  it('retries SlowDown inside the SDK, then reports it as ThrottledError (retried longer by withRetry)', async () => {
    let requests = 0;
    const server = createServer((_req, res) => {
      requests++;
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const store = awsS3Store(minio({ endpoint: `http://127.0.0.1:${port}` }));
      const error = await store.list('any-bucket', '').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ThrottledError);
      expect((error as Error).message).toMatch(
        /listing s3:\/\/127\.0\.0\.1:\d+\/any-bucket\/ was throttled: SlowDown/,
      );
      expect((error as Error).message).not.toContain(testbed().s3.secretAccessKey);
      // one listing on the lean path, answered SlowDown, then the SDK's own four attempts
      expect(requests).toBe(5);
    } finally {
      server.close();
    }
  });
});
