import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { deleteBucket, s3Client, testbed, uniqueName, useBucket } from '../../../test/env/fixtures.ts';
import { describeObjectStoreConformance } from '../../../test/conformance/objectStore.ts';
import { NotFoundError, RetryableError, ValidationError } from '../../errors/index.ts';
import { S3ObjectStore, type S3ObjectStoreOptions } from './objectStore.ts';

const MiB = 1024 * 1024;
const bucket = useBucket('s3store');
const other = useBucket('s3store-other');
const sdkBucket = useBucket('s3sdk');
const sdkOther = useBucket('s3sdk-other');

function minioOptions(overrides: Partial<S3ObjectStoreOptions> = {}): S3ObjectStoreOptions {
  const { s3 } = testbed();
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    // small enough that the conformance suite's 12 MiB objects go multipart with 5 MiB parts
    multipartCopyThreshold: 6 * MiB,
    partSize: 5 * MiB,
    ...overrides,
  };
}

describeObjectStoreConformance(
  'S3ObjectStore on MinIO',
  () => {
    const newBucket = uniqueName('s3store-new');
    return Promise.resolve({
      store: new S3ObjectStore(minioOptions()),
      bucket: bucket.name,
      otherBucket: other.name,
      newBucket,
      cleanup: () => deleteBucket(s3Client(), newBucket).catch(() => undefined),
    });
  },
  // MinIO returns a full-object SHA-256 for single-part puts (sent by the store) and computes one
  // on single-part copies; multipart copies and listings carry none
  { partSize: 5 * MiB, sha256: { put: true, copy: true, head: true }, prefixCollisions: false },
);

describeObjectStoreConformance(
  'S3ObjectStore on MinIO, every request through the SDK',
  () =>
    Promise.resolve({
      store: new S3ObjectStore(minioOptions({ leanRequests: false })),
      bucket: sdkBucket.name,
      otherBucket: sdkOther.name,
    }),
  { partSize: 5 * MiB, sha256: { put: true, copy: true, head: true }, prefixCollisions: false },
);

/** The names of the commands a store's SDK client sends from now on. */
function sdkCommands(store: S3ObjectStore): string[] {
  const sent: string[] = [];
  store.client.middlewareStack.add(
    (next, context) => (args) => {
      sent.push(context.commandName ?? '?');
      return next(args);
    },
    { step: 'initialize', name: `count${String(Math.random())}` },
  );
  return sent;
}

describe('S3ObjectStore', () => {
  const s3 = s3Client();

  it('names the endpoint, never the credentials', () => {
    const store = new S3ObjectStore(minioOptions());
    expect(store.name).toBe(`s3://${new URL(testbed().s3.endpoint).host}`);
    expect(store.name).not.toContain(testbed().s3.accessKeyId);
    expect(new S3ObjectStore({ region: 'eu-west-1' }).name).toBe('s3://s3.eu-west-1.amazonaws.com');
  });

  it('rejects part sizes and copy thresholds S3 cannot honour', () => {
    expect(() => new S3ObjectStore(minioOptions({ partSize: MiB }))).toThrow(ValidationError);
    for (const endpoint of ['127.0.0.1:9000', 'localhost:9000', 'ftp://host']) {
      expect(() => new S3ObjectStore(minioOptions({ endpoint }))).toThrow(/not an http\(s\) URL/);
    }
    expect(() => new S3ObjectStore(minioOptions({ multipartCopyThreshold: 6 * 1024 * MiB }))).toThrow(
      ValidationError,
    );
  });

  it('stores the SHA-256 of a single-part put with the object, so HEAD returns it', async () => {
    const store = new S3ObjectStore(minioOptions());
    const put = await store.put(bucket.name, 'sha/small', Buffer.from('hello world'));
    expect(put.sha256).toBe('b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
    const raw = await s3.send(
      new HeadObjectCommand({ Bucket: bucket.name, Key: 'sha/small', ChecksumMode: 'ENABLED' }),
    );
    expect(raw.ChecksumType).toBe('FULL_OBJECT');
    expect(raw.ETag).toBe(`"${put.etag}"`);
  });

  it('does not pass a multipart composite checksum off as a SHA-256', async () => {
    const store = new S3ObjectStore(minioOptions());
    const data = Buffer.alloc(11 * MiB, 7);
    const put = await store.put(bucket.name, 'sha/multi', Readable.from([data]));
    expect(put.etag).toMatch(/-3$/);
    const head = await store.head(bucket.name, 'sha/multi');
    expect(head?.sha256).toBeUndefined();
  });

  it('copies above the threshold in parts and below it in one request with a SHA-256', async () => {
    const store = new S3ObjectStore(minioOptions());
    const data = Buffer.alloc(13 * MiB, 3);
    await store.put(bucket.name, 'copy/big', data);
    const big = await store.copy(bucket.name, 'copy/big', other.name, 'copy/big', { size: data.length });
    // 13 MiB in 5 MiB parts: a multipart ETag of three parts, and no whole-object hash
    expect(big.etag).toMatch(/-3$/);
    expect(big.sha256).toBeUndefined();
    expect(big.size).toBe(data.length);

    const small = Buffer.alloc(MiB, 4);
    await store.put(bucket.name, 'copy/small', small);
    const copied = await store.copy(bucket.name, 'copy/small', other.name, 'copy/small', {
      size: small.length,
    });
    expect(copied.etag).not.toMatch(/-/);
    expect(copied.sha256).toBe(createHash('sha256').update(small).digest('hex'));
  });

  it('takes the SHA-256 of a copy from the copy response itself: one request per object', async () => {
    const data = Buffer.from('one request per copy');
    const sha = createHash('sha256').update(data).digest('hex');
    for (const leanRequests of [true, false]) {
      const store = new S3ObjectStore(minioOptions({ leanRequests }));
      await store.put(bucket.name, 'one/src', data);
      const sent = sdkCommands(store);
      const copied = await store.copy(bucket.name, 'one/src', other.name, `one/${leanRequests}`, {
        size: data.length,
      });
      expect(copied.sha256).toBe(sha);
      expect(copied.etag).toMatch(/^[0-9a-f]{32}$/);
      // the lean path sends none through the SDK; the SDK path one CopyObject and no HEAD
      expect(sent).toEqual(leanRequests ? [] : ['CopyObjectCommand']);
      const head = await store.head(other.name, `one/${leanRequests}`);
      expect(head).toMatchObject({ size: data.length, etag: copied.etag, sha256: sha });
    }
  });

  it('sends what the lean path does not handle through the SDK: denied access stays permanent', async () => {
    const store = new S3ObjectStore(
      minioOptions({ credentials: { accessKeyId: 'wrong-key', secretAccessKey: 'wrong-secret-value' } }),
    );
    const sent = sdkCommands(store);
    for (const attempt of [
      () => store.head(bucket.name, 'k'),
      () => store.copy(bucket.name, 'k', other.name, 'k', { size: 1 }),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(RetryableError);
      expect(error).not.toBeInstanceOf(NotFoundError);
      expect((error as Error).message).not.toContain('wrong-secret-value');
    }
    expect(sent).toEqual(['HeadObjectCommand', 'CopyObjectCommand']);
  });

  it('puts, gets and lists through the lean path, chunks cut into parts as read, the same bytes stored', async () => {
    const store = new S3ObjectStore(minioOptions());
    const sent = sdkCommands(store);
    const small = Buffer.from('a single-part put, signed with its own SHA-256');
    const single = await store.put(
      bucket.name,
      'lean/single',
      Readable.from([small.subarray(0, 9), small.subarray(9)]),
      {
        contentType: 'text/plain',
      },
    );
    expect(single.sha256).toBe(createHash('sha256').update(small).digest('hex'));
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: bucket.name, Key: 'lean/single', ChecksumMode: 'ENABLED' }),
    );
    expect(head).toMatchObject({
      ContentType: 'text/plain',
      ETag: `"${single.etag}"`,
      ChecksumType: 'FULL_OBJECT',
    });
    // 13 MiB in chunks of 1 MiB + 3 bytes: part boundaries fall inside chunks
    const chunks = Array.from({ length: 13 }, (_, i) => Buffer.alloc(MiB + 3, i + 1));
    const data = Buffer.concat(chunks);
    const multi = await store.put(bucket.name, 'lean/multi', Readable.from(chunks), { size: data.length });
    expect(multi.etag).toMatch(/-3$/);
    expect(multi.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    const chunksRead: Buffer[] = [];
    for await (const chunk of await store.get(bucket.name, 'lean/multi')) chunksRead.push(chunk as Buffer);
    // equals(): toEqual compares 13 MiB element by element, for a minute
    expect(Buffer.concat(chunksRead).equals(data)).toBe(true);
    const odd = 'lean/odd & key+plus ü\u0001<x>';
    await store.put(bucket.name, odd, Buffer.from('odd'));
    const listed = await store.list(bucket.name, 'lean/', { limit: 2 });
    expect(listed.objects).toMatchObject([
      { key: 'lean/multi', size: data.length, etag: multi.etag },
      { key: odd, size: 3 },
    ]);
    expect(listed.objects[0]?.lastModified.getTime()).toBeGreaterThan(Date.now() - 600_000);
    expect(listed.nextToken).toBe(odd);
    expect((await store.list(bucket.name, 'lean/', { token: odd })).objects.map((o) => o.key)).toEqual([
      'lean/single',
    ]);
    // the SDK only opens and completes the multipart upload: every body went the lean way, and
    // so did the GET and the listings
    expect(sent).toEqual(['CreateMultipartUploadCommand', 'CompleteMultipartUploadCommand']);
    // DeleteObjects (the fixture's bucket cleanup) cannot carry this key in its XML body
    await store.delete(bucket.name, odd);
  });

  it('fails a multipart put whose stream is shorter than declared, storing nothing', async () => {
    const store = new S3ObjectStore(minioOptions());
    const data = Buffer.alloc(7 * MiB, 5);
    const put = store.put(bucket.name, 'short/stream', Readable.from([data]), { size: 8 * MiB });
    await expect(put).rejects.toBeInstanceOf(ValidationError);
    await expect(put).rejects.toThrow(/7340032 bytes but the caller declared 8388608/);
    expect(await store.head(bucket.name, 'short/stream')).toBeUndefined();
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket.name, Prefix: 'short/' }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('aborts a failed multipart upload, leaving no parts behind', async () => {
    const store = new S3ObjectStore(minioOptions());
    const failing = Readable.from(
      (async function* chunks() {
        for (let i = 0; i < 12; i++) yield Buffer.alloc(MiB, i);
        await Promise.resolve();
        throw new Error('source connection dropped');
      })(),
    );
    await expect(store.put(bucket.name, 'abort/me', failing)).rejects.toThrow();
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket.name, Prefix: 'abort/' }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('reads a stream the engine can hash, and maps a missing key to NotFoundError naming it', async () => {
    const store = new S3ObjectStore(minioOptions());
    const error = await store.get(bucket.name, 'no/such key').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toContain(`${bucket.name}/no/such key`);
    expect((error as Error).message).not.toContain(testbed().s3.secretAccessKey);
  });

  it('turns an unreachable endpoint into a RetryableError', async () => {
    const store = new S3ObjectStore(minioOptions({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }));
    await expect(store.head(bucket.name, 'k')).rejects.toBeInstanceOf(RetryableError);
  });

  it('reports a permission problem as a permanent error naming the bucket, without the secret', async () => {
    const store = new S3ObjectStore(
      minioOptions({ credentials: { accessKeyId: 'wrong-key', secretAccessKey: 'wrong-secret-value' } }),
    );
    const error = await store.list(bucket.name, '').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(RetryableError);
    expect(error).not.toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toContain(bucket.name);
    expect((error as Error).message).not.toContain('wrong-secret-value');
  });

  it('lists keys the XML of a listing could not carry raw', async () => {
    const store = new S3ObjectStore(minioOptions());
    const key = 'xml/control\u0001char and+plus';
    await store.put(bucket.name, key, Buffer.from('x'));
    expect((await store.list(bucket.name, 'xml/')).objects.map((o) => o.key)).toEqual([key]);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket.name, Key: key }));
    expect(await got.Body?.transformToString()).toBe('x');
    // DeleteObjects (the fixture's bucket cleanup) cannot carry this key in its XML body
    await store.delete(bucket.name, key);
  });
});
