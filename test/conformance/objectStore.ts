// The ObjectStore contract (src/providers/types.ts) as one suite every implementation runs:
// memory and file stores from unit tests, S3 against the test bed's MinIO. A behaviour the
// engine relies on belongs here, not in one provider's own tests.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError, ValidationError } from '../../src/errors/index.ts';
import type { ObjectInfo, ObjectStore } from '../../src/providers/types.ts';

const MiB = 1024 * 1024;

export interface ConformanceFixture {
  store: ObjectStore;
  /** An existing, empty bucket. */
  bucket: string;
  /** A second existing bucket, for copies across buckets. */
  otherBucket: string;
  /** A bucket that does not exist yet: the suite creates it; `cleanup` removes it. */
  newBucket?: string | undefined;
  cleanup?: () => Promise<void>;
}

export interface ConformanceOptions {
  /**
   * Size of the object copied by the large-copy test; set it above the store's multipart-copy
   * threshold so the copy goes in parts (default 12 MiB).
   */
  largeObjectSize?: number;
  /** Size of the stream of unknown length put in parts; above the store's part size (default 12 MiB). */
  streamSize?: number;
  /** Size at which a put goes multipart, for the aborted-put test (default 5 MiB). */
  partSize?: number;
  /**
   * Where the store promises a `sha256` (it is always checked when present): `put` results;
   * single-part `copy` results; multipart `copy` results; `head` of an object a small put wrote;
   * `list` entries.
   */
  sha256?: { put?: boolean; copy?: boolean; multipartCopy?: boolean; head?: boolean; list?: boolean };
  /**
   * Whether a key may also be the "directory" of other keys (`a/b` and `a/b/c`), as on AWS S3
   * (default true). MinIO accepts such writes but leaves the nested keys out of listings
   * (https://github.com/minio/minio/issues/18148), so its suite turns the check off.
   */
  prefixCollisions?: boolean;
}

const sha256Hex = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Compares by length and digest: deep equality of large Buffers is slow in expect. */
async function expectContent(stream: Promise<Readable>, expected: Buffer): Promise<void> {
  const got = await readAll(await stream);
  expect(got.length).toBe(expected.length);
  expect(sha256Hex(got)).toBe(sha256Hex(expected));
}

/** Byte order of the UTF-8 encodings: the order every store must list in. */
function byteOrder(keys: string[]): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** A stream of `size` pseudo-random bytes in 1 MiB chunks, with no length known up front. */
function streamOf(data: Buffer, chunkSize = MiB): Readable {
  return Readable.from(
    (function* chunks() {
      for (let at = 0; at < data.length; at += chunkSize) yield data.subarray(at, at + chunkSize);
    })(),
  );
}

/** A stream that emits `size` bytes and then fails, as a dropped source connection would. */
function failingStream(size: number): Readable {
  return Readable.from(
    (async function* chunks() {
      for (let sent = 0; sent < size; sent += MiB) {
        yield randomBytes(Math.min(MiB, size - sent));
        await Promise.resolve();
      }
      throw new Error('source connection dropped');
    })(),
  );
}

async function listAll(
  store: ObjectStore,
  bucket: string,
  prefix: string,
  limit?: number,
): Promise<ObjectInfo[]> {
  const all: ObjectInfo[] = [];
  let token: string | undefined;
  for (let pages = 0; ; pages++) {
    const page = await store.list(bucket, prefix, { token, limit });
    if (limit !== undefined) expect(page.objects.length).toBeLessThanOrEqual(limit);
    all.push(...page.objects);
    token = page.nextToken;
    if (token === undefined) return all;
    expect(pages, 'listing does not end').toBeLessThan(10_000);
  }
}

export function describeObjectStoreConformance(
  name: string,
  setup: () => Promise<ConformanceFixture>,
  options: ConformanceOptions = {},
): void {
  const largeObjectSize = options.largeObjectSize ?? 12 * MiB;
  const streamSize = options.streamSize ?? 12 * MiB;
  const partSize = options.partSize ?? 5 * MiB;
  const promises = options.sha256 ?? {};
  const prefixCollisions = options.prefixCollisions ?? true;
  const bigTimeout = 120_000;

  describe(`ObjectStore conformance: ${name}`, () => {
    let f: ConformanceFixture;
    let store: ObjectStore;
    let bucket: string;
    const missingBucket = (): string => `${bucket}-none`;

    beforeAll(async () => {
      f = await setup();
      ({ store, bucket } = f);
    }, bigTimeout);
    afterAll(async () => {
      await f.cleanup?.();
    }, bigTimeout);

    /** The object's sha256, when given, is the real one; required where the store promises it. */
    function expectSha(info: ObjectInfo | undefined, data: Buffer, required: boolean | undefined): void {
      if (required === true) expect(info?.sha256, `sha256 of ${info?.key}`).toBeDefined();
      if (info?.sha256 !== undefined) expect(info.sha256).toBe(sha256Hex(data));
    }

    function expectInfo(info: ObjectInfo | undefined, key: string, data: Buffer): void {
      expect(info).toBeDefined();
      expect(info?.key).toBe(key);
      expect(info?.size).toBe(data.length);
      expect(info?.etag).toMatch(/^[^"]+$/);
      expect(info?.lastModified).toBeInstanceOf(Date);
      expect(Number.isNaN(info?.lastModified.getTime())).toBe(false);
    }

    it('has a display name without credentials', () => {
      expect(store.name).not.toBe('');
      expect(store.name).not.toMatch(/@|secret|password/i);
    });

    it('creates buckets idempotently and tells existing from missing ones', async () => {
      expect(await store.bucketExists(bucket)).toBe(true);
      expect(await store.bucketExists(f.otherBucket)).toBe(true);
      expect(await store.bucketExists(missingBucket())).toBe(false);
      await store.createBucket(bucket);
      expect(await store.bucketExists(bucket)).toBe(true);
      if (f.newBucket !== undefined) {
        expect(await store.bucketExists(f.newBucket)).toBe(false);
        await store.createBucket(f.newBucket);
        await store.createBucket(f.newBucket);
        expect(await store.bucketExists(f.newBucket)).toBe(true);
        expect((await store.list(f.newBucket, '')).objects).toEqual([]);
      }
    });

    it('puts and gets a buffer', async () => {
      const data = Buffer.from('hello document library');
      const put = await store.put(bucket, 'buf/doc.txt', data, { contentType: 'text/plain' });
      expectInfo(put, 'buf/doc.txt', data);
      expectSha(put, data, promises.put);
      await expectContent(store.get(bucket, 'buf/doc.txt'), data);
      const head = await store.head(bucket, 'buf/doc.txt');
      expectInfo(head, 'buf/doc.txt', data);
      expect(head?.etag).toBe(put.etag);
      expectSha(head, data, promises.head);
    });

    it('puts and gets a stream of known size, and an empty object', async () => {
      const data = randomBytes(300 * 1024);
      const put = await store.put(bucket, 'stream/known.bin', streamOf(data, 64 * 1024), {
        size: data.length,
      });
      expectInfo(put, 'stream/known.bin', data);
      expectSha(put, data, promises.put);
      await expectContent(store.get(bucket, 'stream/known.bin'), data);

      const empty = Buffer.alloc(0);
      const putEmpty = await store.put(bucket, 'stream/empty', Readable.from([]));
      expectInfo(putEmpty, 'stream/empty', empty);
      expectSha(putEmpty, empty, promises.put);
      expect((await readAll(await store.get(bucket, 'stream/empty'))).length).toBe(0);
    });

    it(
      'puts a stream of unknown size larger than a part (multipart)',
      async () => {
        const data = randomBytes(streamSize);
        const put = await store.put(bucket, 'multipart/stream.bin', streamOf(data));
        expectInfo(put, 'multipart/stream.bin', data);
        expectSha(put, data, promises.put);
        await expectContent(store.get(bucket, 'multipart/stream.bin'), data);
        const head = await store.head(bucket, 'multipart/stream.bin');
        expect(head?.size).toBe(data.length);
        expect(head?.etag).toBe(put.etag);
        expectSha(head, data, false);
      },
      bigTimeout,
    );

    it('answers undefined to head and NotFoundError to get for what does not exist', async () => {
      expect(await store.head(bucket, 'missing/nothing-here')).toBeUndefined();
      expect(await store.head(missingBucket(), 'missing/nothing-here')).toBeUndefined();
      await expect(store.get(bucket, 'missing/nothing-here')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.get(missingBucket(), 'missing/nothing-here')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('throws NotFoundError for a missing bucket on list, put, copy and delete', async () => {
      const gone = missingBucket();
      await expect(store.list(gone, '')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.put(gone, 'k', Buffer.from('x'))).rejects.toBeInstanceOf(NotFoundError);
      // a failed put destroys the stream it was given, so whatever pipes into it stops too
      const body = new PassThrough();
      body.end('x');
      await expect(store.put(gone, 'k', body)).rejects.toBeInstanceOf(NotFoundError);
      expect(body.destroyed).toBe(true);
      await expect(store.delete(gone, 'k')).rejects.toBeInstanceOf(NotFoundError);
      await store.put(bucket, 'nb/src', Buffer.from('x'));
      await expect(store.copy(bucket, 'nb/src', gone, 'k', { size: 1 })).rejects.toBeInstanceOf(
        NotFoundError,
      );
      await expect(store.copy(gone, 'k', bucket, 'nb/dst', { size: 1 })).rejects.toBeInstanceOf(
        NotFoundError,
      );
      expect(await store.head(bucket, 'nb/dst')).toBeUndefined();
    });

    it('lists in pages of at most `limit`, in key order, until no token is returned', async () => {
      const keys = Array.from({ length: 25 }, (_, i) => `page/${String(i).padStart(3, '0')}`);
      // written in shuffled order: the listing order must not depend on write order
      for (const key of [...keys].reverse()) await store.put(bucket, key, Buffer.from(key));
      const first = await store.list(bucket, 'page/', { limit: 10 });
      expect(first.objects.map((o) => o.key)).toEqual(keys.slice(0, 10));
      expect(first.nextToken).toBeDefined();
      const second = await store.list(bucket, 'page/', { limit: 10, token: first.nextToken });
      expect(second.objects.map((o) => o.key)).toEqual(keys.slice(10, 20));
      const third = await store.list(bucket, 'page/', { limit: 10, token: second.nextToken });
      expect(third.objects.map((o) => o.key)).toEqual(keys.slice(20));
      expect(third.nextToken).toBeUndefined();
      // a token can be used again: pages are a function of (prefix, token, limit)
      const again = await store.list(bucket, 'page/', { limit: 10, token: first.nextToken });
      expect(again.objects.map((o) => o.key)).toEqual(keys.slice(10, 20));
      const listed = await listAll(store, bucket, 'page/', 7);
      expect(listed.map((o) => o.key)).toEqual(keys);
      for (const o of listed) {
        expectInfo(o, o.key, Buffer.from(o.key));
        expectSha(o, Buffer.from(o.key), promises.list);
      }
    });

    it('orders nested and unicode keys by their UTF-8 bytes', async () => {
      const names = [
        'a-b',
        'a/b/c',
        'a/b-c',
        'a/bc',
        'a.b',
        'a0',
        'ab',
        'A',
        'b/a',
        'z',
        'ü',
        '\uFF21', // FULLWIDTH A: after the surrogates in UTF-16, before them in UTF-8
        '\u{1F600}',
        'a b',
        // a key that is also the "directory" of other keys
        ...(prefixCollisions ? ['a', 'a/b'] : []),
      ];
      const keys = names.map((n) => `order/${n}`);
      for (const key of keys) await store.put(bucket, key, Buffer.from(key));
      const listed = await listAll(store, bucket, 'order/', 4);
      expect(listed.map((o) => o.key)).toEqual(byteOrder(keys));
      const whole = await store.list(bucket, 'order/');
      expect(whole.objects.map((o) => o.key)).toEqual(byteOrder(keys));
      expect(whole.nextToken).toBeUndefined();
    });

    it('filters by a string prefix, not only by "directory"', async () => {
      const keys = [
        'pfx/a-b',
        'pfx/a/b',
        'pfx/a/c/d',
        'pfx/ab',
        'pfx/b',
        'pfx2/a',
        ...(prefixCollisions ? ['pfx/a', 'pfx/a/b/c'] : []),
      ];
      for (const key of keys) await store.put(bucket, key, Buffer.from(key));
      for (const prefix of [
        'pfx/a',
        'pfx/a/',
        'pfx/a/b',
        'pfx/a/c',
        'pfx',
        'pfx/',
        'pfx/c',
        'pfx/zz/',
        'pfx2',
      ]) {
        const listed = (await listAll(store, bucket, prefix, 2)).map((o) => o.key);
        expect(listed, `prefix ${prefix}`).toEqual(byteOrder(keys.filter((k) => k.startsWith(prefix))));
      }
      const none = await store.list(bucket, 'nothing-under-this/');
      expect(none).toEqual({ objects: [], nextToken: undefined });
    });

    it('overwrites a key with a complete new object', async () => {
      const v1 = Buffer.from('version one, the longer one');
      const v2 = Buffer.from('version two');
      const first = await store.put(bucket, 'over/doc', v1);
      const second = await store.put(bucket, 'over/doc', v2);
      expect(second.etag).not.toBe(first.etag);
      expectSha(second, v2, promises.put);
      await expectContent(store.get(bucket, 'over/doc'), v2);
      const head = await store.head(bucket, 'over/doc');
      expect(head?.size).toBe(v2.length);
      expectSha(head, v2, promises.head);
      const listed = await listAll(store, bucket, 'over/');
      expect(listed.map((o) => [o.key, o.size])).toEqual([['over/doc', v2.length]]);
    });

    it('deletes idempotently', async () => {
      await store.put(bucket, 'del/doc', Buffer.from('bye'));
      await store.put(bucket, 'del/keep', Buffer.from('stay'));
      await store.delete(bucket, 'del/doc');
      await store.delete(bucket, 'del/doc');
      await store.delete(bucket, 'del/never-existed');
      expect(await store.head(bucket, 'del/doc')).toBeUndefined();
      await expect(store.get(bucket, 'del/doc')).rejects.toBeInstanceOf(NotFoundError);
      expect((await listAll(store, bucket, 'del/')).map((o) => o.key)).toEqual(['del/keep']);
    });

    it('copies within a bucket and across buckets', async () => {
      const data = randomBytes(100 * 1024);
      await store.put(bucket, 'copy/src.bin', data);
      const inside = await store.copy(bucket, 'copy/src.bin', bucket, 'copy/dst.bin', { size: data.length });
      expectInfo(inside, 'copy/dst.bin', data);
      expectSha(inside, data, promises.copy);
      await expectContent(store.get(bucket, 'copy/dst.bin'), data);
      await expectContent(store.get(bucket, 'copy/src.bin'), data);

      const across = await store.copy(bucket, 'copy/src.bin', f.otherBucket, 'copied/dst.bin', {
        size: data.length,
      });
      expectInfo(across, 'copied/dst.bin', data);
      expectSha(across, data, promises.copy);
      await expectContent(store.get(f.otherBucket, 'copied/dst.bin'), data);
      expect((await store.head(f.otherBucket, 'copied/dst.bin'))?.etag).toBe(across.etag);

      // a copy overwrites, like put
      await store.put(bucket, 'copy/other.bin', Buffer.from('other'));
      await store.copy(bucket, 'copy/other.bin', bucket, 'copy/dst.bin', { size: 5 });
      expect((await readAll(await store.get(bucket, 'copy/dst.bin'))).toString()).toBe('other');
    });

    it('throws NotFoundError when the copy source does not exist', async () => {
      await expect(store.copy(bucket, 'copy/missing', bucket, 'copy/to', { size: 1 })).rejects.toBeInstanceOf(
        NotFoundError,
      );
      expect(await store.head(bucket, 'copy/to')).toBeUndefined();
    });

    it(
      'copies a large object in parts',
      async () => {
        const data = randomBytes(largeObjectSize);
        await store.put(bucket, 'large/src.bin', data, { size: data.length });
        const copied = await store.copy(bucket, 'large/src.bin', f.otherBucket, 'large/dst.bin', {
          size: data.length,
        });
        expectInfo(copied, 'large/dst.bin', data);
        expectSha(copied, data, promises.multipartCopy);
        await expectContent(store.get(f.otherBucket, 'large/dst.bin'), data);
        const head = await store.head(f.otherBucket, 'large/dst.bin');
        expect(head?.size).toBe(data.length);
        expect(head?.etag).toBe(copied.etag);
        expectSha(head, data, false);
      },
      bigTimeout,
    );

    it('stores keys with spaces, unicode and URL-special characters', async () => {
      const keys = [
        'odd/with space/and  two.txt',
        'odd/naïve 文件 😀.txt',
        'odd/a+b=c&d?e#f;g,h',
        'odd/percent%20literal%',
        'odd/.leading-dot/.hidden',
        'odd/tab\there',
        'odd/quote\'"<>',
      ];
      for (const key of keys) {
        const data = Buffer.from(`content of ${key}`);
        const put = await store.put(bucket, key, data);
        expect(put.key).toBe(key);
        await expectContent(store.get(bucket, key), data);
        expect((await store.head(bucket, key))?.size).toBe(data.length);
      }
      expect((await listAll(store, bucket, 'odd/', 3)).map((o) => o.key)).toEqual(byteOrder(keys));
      const source = keys[1] as string;
      const size = Buffer.byteLength(`content of ${source}`);
      const copied = await store.copy(bucket, source, bucket, 'odd/copy of 😀', { size });
      expect(copied.key).toBe('odd/copy of 😀');
      expect((await readAll(await store.get(bucket, 'odd/copy of 😀'))).toString()).toBe(
        `content of ${source}`,
      );
    });

    it('leaves nothing visible when the body of a put fails or has the wrong size', async () => {
      await expect(store.put(bucket, 'fail/small', failingStream(1024))).rejects.toThrow();
      expect(await store.head(bucket, 'fail/small')).toBeUndefined();
      await expect(store.put(bucket, 'fail/size', Buffer.from('12345'), { size: 6 })).rejects.toBeInstanceOf(
        ValidationError,
      );
      expect(await store.head(bucket, 'fail/size')).toBeUndefined();
      await expect(
        store.put(bucket, 'fail/size', streamOf(Buffer.from('1234')), { size: 3 }),
      ).rejects.toBeInstanceOf(ValidationError);
      expect(await store.head(bucket, 'fail/size')).toBeUndefined();
      // a failed overwrite keeps the old object whole
      await store.put(bucket, 'fail/kept', Buffer.from('old'));
      await expect(store.put(bucket, 'fail/kept', failingStream(1024))).rejects.toThrow();
      expect((await readAll(await store.get(bucket, 'fail/kept'))).toString()).toBe('old');
      expect((await listAll(store, bucket, 'fail/')).map((o) => o.key)).toEqual(['fail/kept']);
    });

    it(
      'leaves nothing visible when a multipart put fails midway',
      async () => {
        await expect(store.put(bucket, 'fail/large', failingStream(partSize + 2 * MiB))).rejects.toThrow();
        expect(await store.head(bucket, 'fail/large')).toBeUndefined();
        expect((await listAll(store, bucket, 'fail/large')).length).toBe(0);
      },
      bigTimeout,
    );
  });
}
