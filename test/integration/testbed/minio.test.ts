// MinIO smoke test: the S3 operations the document-library step relies on.
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deleteBucket, s3Client, uniqueName, useBucket } from '../../env/fixtures.ts';

const bucket = useBucket('smoke');

describe('minio', () => {
  const s3 = s3Client();

  it('puts an object and copies it server-side', async () => {
    await s3.send(
      new PutObjectCommand({ Bucket: bucket.name, Key: 'a/doc.txt', Body: 'hello document library' }),
    );
    await s3.send(
      new CopyObjectCommand({
        Bucket: bucket.name,
        Key: 'b/doc.txt',
        CopySource: `${bucket.name}/a/doc.txt`,
      }),
    );
    const copied = await s3.send(new GetObjectCommand({ Bucket: bucket.name, Key: 'b/doc.txt' }));
    expect(await copied.Body?.transformToString()).toBe('hello document library');
  });

  it('assembles a multipart upload', async () => {
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(1024)];
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: 'big.bin' }),
    );
    const etags = [];
    for (const [i, body] of parts.entries()) {
      const r = await s3.send(
        new UploadPartCommand({
          Bucket: bucket.name,
          Key: 'big.bin',
          UploadId,
          PartNumber: i + 1,
          Body: body,
        }),
      );
      etags.push({ ETag: r.ETag, PartNumber: i + 1 });
    }
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket.name,
        Key: 'big.bin',
        UploadId,
        MultipartUpload: { Parts: etags },
      }),
    );
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket.name, Key: 'big.bin' }));
    expect(head.ContentLength).toBe(5 * 1024 * 1024 + 1024);
    expect(head.ETag).toMatch(/-2"$/);
  });

  it('refuses to delete an object version under Object Lock retention', async () => {
    const locked = uniqueName('locked');
    await s3.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true }));
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: locked,
        Key: 'kept.txt',
        Body: 'immutable',
        ObjectLockMode: 'GOVERNANCE',
        ObjectLockRetainUntilDate: new Date(Date.now() + 24 * 3600 * 1000),
      }),
    );
    expect(put.VersionId).toBeDefined();
    await expect(
      s3.send(new DeleteObjectCommand({ Bucket: locked, Key: 'kept.txt', VersionId: put.VersionId })),
    ).rejects.toThrow(/WORM protected/);
    // GOVERNANCE (unlike COMPLIANCE) lets the test clean up after itself with the bypass header
    await s3.send(
      new DeleteObjectCommand({
        Bucket: locked,
        Key: 'kept.txt',
        VersionId: put.VersionId,
        BypassGovernanceRetention: true,
      }),
    );
    await deleteBucket(s3, locked);
  });
});
