// ObjectStore on any S3-compatible endpoint (MinIO, Ceph, AWS S3). The AWS provider builds on
// this class; nothing here assumes AWS beyond the S3 API itself.
//
// SHA-256: the store's own multipart checksums are composites (a hash of part hashes), not a
// whole-object hash, so `put` hashes the bytes on the way through and sends the digest with a
// single-part PutObject (the server verifies and keeps it, so a later `head` returns it). Copies
// ask the server to compute SHA-256 (single-part CopyObject only) and read it from the response:
// AWS S3 returns it in the CopyObjectResult, MinIO in the `x-amz-checksum-sha256` header only (a
// HEAD is the last resort, for a server that returns it in neither).
//
// Single-part copies, HEADs, GETs and listing pages, the requests made once per object (or page),
// go through a lean SigV4 path (./lean.ts) instead of the SDK's middleware stack, and so do the
// bodies of puts (PutObject, UploadPart): sent as the chunks read, never concatenated, signed with
// the SHA-256 computed anyway (single part) or UNSIGNED-PAYLOAD (parts; the SDK signs stream bodies
// so too), where the SDK would hash every byte again to sign it. Everything else, and every request
// that path does not complete, goes through the SDK (docs/performance.md, P1b).
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type BucketLocationConstraint,
  type ChecksumType,
  type CopyObjectCommandOutput,
  type CompletedPart,
  type HeadObjectCommandOutput,
  type S3ClientConfig,
  type _Object,
} from '@aws-sdk/client-s3';
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  isRetryable,
  NotFoundError,
  RetryableError,
  ThrottledError,
  ValidationError,
} from '../../errors/index.ts';
import type { CopyOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from '../types.ts';
import { s3StoreName } from '../names.ts';
import { header, LeanS3, s3Error, xmlValue, type LeanResponse } from './lean.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** S3's smallest part (all but the last), largest single-part copy and most parts per upload. */
const minPartSize = 5 * MiB;
const maxSingleCopy = 5 * GiB;
const maxParts = 10_000;
const defaultListLimit = 1000;

export interface S3ObjectStoreOptions {
  /** For S3-compatible servers, e.g. `http://127.0.0.1:9000`; omit for AWS. */
  endpoint?: string | undefined;
  region: string;
  /** Static keys or a provider; omitted, the SDK's default chain (env, web identity, IMDS) applies. */
  credentials?: S3ClientConfig['credentials'];
  /** Path-style URLs (`host/bucket/key`), which MinIO and most S3-compatible servers need. */
  forcePathStyle?: boolean | undefined;
  /** Objects above this size are copied with UploadPartCopy (default and maximum 5 GiB). */
  multipartCopyThreshold?: number | undefined;
  /** Part size of multipart uploads and copies (default 64 MiB, minimum 5 MiB). */
  partSize?: number | undefined;
  /** Parts in flight per multipart upload or copy (default 4); each buffers one part in memory. */
  queueSize?: number | undefined;
  /** Upper bound of concurrent connections to the endpoint (SDK default 50). */
  maxSockets?: number | undefined;
  /** Attempts per request inside the SDK (SDK default 3); withRetry adds retries on top. */
  maxAttempts?: number | undefined;
  /**
   * The SDK's retry mode: `adaptive` also rate-limits the client when S3 throttles (SlowDown),
   * so many copies in flight back off together instead of retrying into the throttle.
   */
  retryMode?: 'standard' | 'adaptive' | undefined;
  /** Fail a connection attempt after this long (default: the SDK's, none). */
  connectionTimeoutMs?: number | undefined;
  /** Fail a request whose socket stays idle this long (a hung connection), as retryable. */
  requestTimeoutMs?: number | undefined;
  /**
   * Send and request SHA-256 checksums (default true). Turn off for S3-compatible servers that
   * reject the `x-amz-checksum-*` headers; every `sha256` from `put` is still the real one.
   */
  checksums?: boolean | undefined;
  /**
   * Send single-part copies, HEADs, GETs, listings and the bodies of puts through the lean SigV4
   * path (default true); false sends every request through the SDK.
   */
  leanRequests?: boolean | undefined;
}

type ErrorLike = Error & {
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  code?: string;
  Code?: string;
};

const notFoundNames = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket', 'NoSuchUpload']);
const throttleNames = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestThrottled',
]);
const retryableNames = new Set([
  ...throttleNames,
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'InternalError',
  'ServiceUnavailable',
  'XMinioServerNotInitialized',
]);
const retryableCodes = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNREFUSED',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

function isTransient(e: ErrorLike, code: string, status: number | undefined): boolean {
  if (retryableNames.has(code) || status === 429 || (status !== undefined && status >= 500)) return true;
  return e.$retryable !== undefined || retryableCodes.has(e.code ?? '') || isRetryable(e);
}

/** ThrottledError for SlowDown/429/503 (back off longer), RetryableError for other transients. */
function transientError(
  e: ErrorLike,
  code: string,
  status: number | undefined,
  what: string,
): RetryableError | undefined {
  if (throttleNames.has(code) || status === 429 || status === 503) {
    return new ThrottledError(`${what} was throttled: ${code}: ${e.message}; retry more slowly`, {
      cause: e,
    });
  }
  if (isTransient(e, code, status)) {
    return new RetryableError(`${what} failed transiently: ${code}: ${e.message}; retry later`, { cause: e });
  }
  return undefined;
}

/** Translates an SDK or network error into the contract's classes, naming the object. */
function mapError(err: unknown, action: string, where: string): Error {
  if (err instanceof NotFoundError || err instanceof RetryableError || err instanceof ValidationError)
    return err;
  const e = (err instanceof Error ? err : new Error(String(err))) as ErrorLike;
  const status = e.$metadata?.httpStatusCode;
  const code = e.Code ?? e.name;
  if (notFoundNames.has(code) || status === 404) {
    const what = code === 'NoSuchBucket' ? 'the bucket does not exist' : 'it does not exist';
    return new NotFoundError(`${action} ${where}: ${what} (${code}); check the bucket and key names`, {
      cause: err,
    });
  }
  const transient = transientError(e, code, status, `${action} ${where}`);
  if (transient !== undefined) return transient;
  // not from the service: the body stream or the client failed, the message says how
  if (e.$metadata === undefined) return new Error(`${action} ${where} failed: ${e.message}`, { cause: err });
  const denied = status === 403 || code === 'AccessDenied';
  const hint = denied
    ? 'check that the credentials may access this bucket'
    : 'check the endpoint, region and bucket settings';
  return new Error(`${action} ${where} failed: ${code}: ${e.message}; ${hint}`, { cause: err });
}

/** The HTTP handler: a keep-alive pool sized to the copy concurrency, and socket timeouts. */
function requestHandlerOptions(options: S3ObjectStoreOptions): Record<string, unknown> {
  const agent =
    options.maxSockets === undefined ? undefined : { keepAlive: true, maxSockets: options.maxSockets };
  return {
    ...(agent === undefined ? {} : { httpAgent: agent, httpsAgent: agent }),
    ...(options.connectionTimeoutMs === undefined ? {} : { connectionTimeout: options.connectionTimeoutMs }),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeout: options.requestTimeoutMs }),
  };
}

const unquote = (etag: string | undefined): string => (etag ?? '').replace(/^"|"$/g, '');

/** Hex SHA-256 from an S3 checksum, or undefined for composite (per-part) checksums. */
function fullObjectSha256(checksum: string | undefined, type: string | undefined): string | undefined {
  if (checksum === undefined || checksum === '' || type === 'COMPOSITE' || /-\d+$/.test(checksum))
    return undefined;
  return Buffer.from(checksum, 'base64').toString('hex');
}

/** CopySource is `bucket/key`, URL-encoded per segment ("/" stays a separator). */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** Keys from ListObjectsV2 with EncodingType=url (form encoding: "+" is a space). */
function decodeKey(key: string): string {
  return decodeURIComponent(key.replaceAll('+', ' '));
}

/** A stream's bytes, hashed and counted as they are pulled, checked against a declared size. */
async function* hashed(
  body: Readable,
  hash: Hash,
  counter: { size: number },
  expected: number | undefined,
): AsyncGenerator<Buffer> {
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    hash.update(bytes);
    counter.size += bytes.length;
    yield bytes;
  }
  if (expected !== undefined && expected !== counter.size) {
    throw new ValidationError(`the body has ${counter.size} bytes but the caller declared ${expected}`);
  }
}

/** Pulls chunks until more than `limit` bytes or the end; `ended` says which. */
async function readUpTo(
  source: AsyncIterator<Buffer>,
  limit: number,
): Promise<{ chunks: Buffer[]; size: number; ended: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  while (size <= limit) {
    const next = await source.next();
    if (next.done === true) return { chunks, size, ended: true };
    chunks.push(next.value);
    size += next.value.length;
  }
  return { chunks, size, ended: false };
}

/**
 * A stream's bytes cut into parts of `size` bytes (the last one may be shorter), as the chunks
 * read: a chunk across a boundary is split by reference, nothing is copied.
 */
class PartReader {
  readonly #source: AsyncIterator<Buffer>;
  readonly #size: number;
  #pending: Buffer[];
  #pendingSize: number;
  #ended = false;

  constructor(first: { chunks: Buffer[]; size: number }, source: AsyncIterator<Buffer>, size: number) {
    this.#pending = first.chunks;
    this.#pendingSize = first.size;
    this.#source = source;
    this.#size = size;
  }

  /** The next part's chunks; undefined after the last part. */
  async next(): Promise<Buffer[] | undefined> {
    while (this.#pendingSize < this.#size && !this.#ended) {
      const next = await this.#source.next();
      if (next.done === true) this.#ended = true;
      else {
        this.#pending.push(next.value);
        this.#pendingSize += next.value.length;
      }
    }
    if (this.#pendingSize === 0) return undefined;
    if (this.#pendingSize <= this.#size) {
      const part = this.#pending;
      this.#pending = [];
      this.#pendingSize = 0;
      return part;
    }
    // whole chunks up to the boundary, then the boundary chunk split in two
    let taken = 0;
    let count = 0;
    for (const chunk of this.#pending) {
      if (taken + chunk.length > this.#size) break;
      taken += chunk.length;
      count++;
    }
    const part = this.#pending.splice(0, count);
    const split = this.#pending[0];
    if (taken < this.#size && split !== undefined) {
      part.push(split.subarray(0, this.#size - taken));
      this.#pending[0] = split.subarray(this.#size - taken);
    }
    this.#pendingSize -= this.#size;
    return part;
  }
}

/** Runs `tasks` with at most `limit` in flight; the first failure rejects. */
async function runLimited<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < tasks.length) {
      const i = next++;
      try {
        results[i] = await (tasks[i] as () => Promise<T>)();
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

/**
 * MinIO returns the checksum a CopyObject computed in the `x-amz-checksum-*` response headers,
 * which the SDK's CopyObject output leaves out: they are copied into its CopyObjectResult.
 */
function addCopyChecksumHeaders(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName !== 'CopyObjectCommand') return result;
      const headers = (result.response as { headers?: Record<string, string | undefined> }).headers ?? {};
      const copied = ((result.output as CopyObjectCommandOutput).CopyObjectResult ??= {});
      copied.ChecksumSHA256 ??= headers['x-amz-checksum-sha256'];
      copied.ChecksumType ??= headers['x-amz-checksum-type'] as ChecksumType | undefined;
      return result;
    },
    { step: 'initialize', name: 'lc2CopyChecksumHeaders' },
  );
}

function leanFor(client: S3Client, options: S3ObjectStoreOptions): LeanS3 {
  return new LeanS3({
    client,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle ?? false,
    // the SDK's default pool size
    maxSockets: options.maxSockets ?? 50,
    connectionTimeoutMs: options.connectionTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
  });
}

export class S3ObjectStore implements ObjectStore {
  readonly name: string;
  readonly client: S3Client;
  readonly #copyThreshold: number;
  readonly #partSize: number;
  readonly #queueSize: number;
  readonly #checksums: boolean;
  readonly #region: string;
  readonly #lean: LeanS3 | undefined;

  constructor(options: S3ObjectStoreOptions) {
    this.#partSize = options.partSize ?? 64 * MiB;
    this.#copyThreshold = options.multipartCopyThreshold ?? maxSingleCopy;
    this.#queueSize = Math.max(1, options.queueSize ?? 4);
    this.#checksums = options.checksums ?? true;
    this.#region = options.region;
    if (this.#partSize < minPartSize) {
      throw new ValidationError(
        `S3 partSize ${this.#partSize} is below S3's minimum part size; use at least 5 MiB`,
      );
    }
    if (this.#copyThreshold > maxSingleCopy || this.#copyThreshold < 1) {
      throw new ValidationError(
        `S3 multipartCopyThreshold ${this.#copyThreshold} is out of range; use 1 byte to 5 GiB (S3's CopyObject limit)`,
      );
    }
    // the display name never carries credentials, even when the endpoint URL has userinfo
    this.name = s3StoreName(options.region, options.endpoint);
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
      ...(options.retryMode === undefined ? {} : { retryMode: options.retryMode }),
      requestHandler: requestHandlerOptions(options),
      forcePathStyle: options.forcePathStyle ?? false,
      // S3-compatible servers differ in the default (CRC) checksums newer SDKs send; this store
      // asks for the checksums it wants explicitly
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    addCopyChecksumHeaders(this.client);
    this.#lean = options.leanRequests === false ? undefined : leanFor(this.client, options);
  }

  async bucketExists(bucket: string): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
      return true;
    } catch (err) {
      const mapped = mapError(err, 'checking bucket', this.#where(bucket));
      if (mapped instanceof NotFoundError) return false;
      throw mapped;
    }
  }

  async createBucket(bucket: string): Promise<void> {
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: bucket,
          // us-east-1 is S3's default location and must not be named
          ...(this.#region === 'us-east-1'
            ? {}
            : {
                CreateBucketConfiguration: { LocationConstraint: this.#region as BucketLocationConstraint },
              }),
        }),
      );
    } catch (err) {
      const code = (err as ErrorLike).name;
      if (code === 'BucketAlreadyOwnedByYou') return;
      if (code === 'BucketAlreadyExists') {
        throw new Error(
          `creating bucket ${this.#where(bucket)} failed: the name is taken by another account; choose another bucket name`,
          { cause: err },
        );
      }
      throw mapError(err, 'creating bucket', this.#where(bucket));
    }
  }

  async list(
    bucket: string,
    prefix: string,
    options: { token?: string | undefined; limit?: number | undefined } = {},
  ): Promise<ListPage> {
    const maxKeys = Math.min(Math.max(1, options.limit ?? defaultListLimit), 1000);
    try {
      const { objects, truncated } =
        (await this.#leanList(bucket, prefix, { token: options.token, maxKeys })) ??
        (await this.#sdkList(bucket, prefix, { token: options.token, maxKeys }));
      if (truncated && objects.length === 0) {
        throw new RetryableError(
          `listing ${this.#where(bucket, prefix)} returned an empty page marked truncated; retry the listing`,
        );
      }
      return { objects, nextToken: truncated ? objects.at(-1)?.key : undefined };
    } catch (err) {
      throw mapError(err, 'listing', this.#where(bucket, prefix));
    }
  }

  /** Undefined for a missing key and for a missing bucket (a HEAD's 404 cannot tell them apart). */
  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    try {
      return (await this.#leanHead(bucket, key)) ?? this.#headInfo(key, await this.#head(bucket, key));
    } catch (err) {
      const mapped = mapError(err, 'reading metadata of', this.#where(bucket, key));
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  async get(bucket: string, key: string): Promise<Readable> {
    try {
      // whatever the lean path does not open, the SDK sends again (its retries, its errors)
      const opened = await this.#lean?.open(bucket, key).catch(() => undefined);
      if (opened !== undefined) return opened;
      const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!(out.Body instanceof Readable)) {
        throw new Error('the response body is not a Node.js stream');
      }
      return out.Body;
    } catch (err) {
      throw mapError(err, 'reading', this.#where(bucket, key));
    }
  }

  async put(
    bucket: string,
    key: string,
    body: Readable | Buffer,
    options: PutOptions = {},
  ): Promise<ObjectInfo> {
    const where = this.#where(bucket, key);
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    const hash = createHash('sha256');
    const counter = { size: 0 };
    const bytes = hashed(source, hash, counter, options.size);
    const target: PutTarget = { bucket, key, contentType: options.contentType };
    try {
      const first = await readUpTo(bytes, this.#partSize);
      if (first.ended) {
        // the bytes were hashed on the way in: no second pass over them
        return await this.#putSingle(target, {
          chunks: first.chunks,
          size: first.size,
          digest: hash.digest(),
        });
      }
      const partSize = this.#partSizeFor(options.size ?? (Buffer.isBuffer(body) ? body.length : undefined));
      const etag = await this.#putMultipart(target, new PartReader(first, bytes, partSize));
      return {
        key,
        size: counter.size,
        etag,
        sha256: hash.digest('hex'),
        // S3 does not return the new object's time; the local clock is within a request of it
        lastModified: new Date(),
      };
    } catch (err) {
      source.destroy();
      if (err instanceof ValidationError)
        throw new ValidationError(`put ${where}: ${err.message}; nothing was stored`);
      throw mapError(err, 'writing', where);
    }
  }

  // eslint-disable-next-line max-params -- the ObjectStore contract fixes this signature
  async copy(
    srcBucket: string,
    srcKey: string,
    dstBucket: string,
    dstKey: string,
    options: CopyOptions,
  ): Promise<ObjectInfo> {
    const where = `${this.#where(srcBucket, srcKey)} to ${this.#where(dstBucket, dstKey)}`;
    try {
      if (options.size > this.#copyThreshold) {
        return await this.#multipartCopy({ srcBucket, srcKey, dstBucket, dstKey });
      }
      return await this.#singleCopy({ srcBucket, srcKey, dstBucket, dstKey }, options.size);
    } catch (err) {
      throw mapError(err, 'copying', where);
    }
  }

  async delete(bucket: string, key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      throw mapError(err, 'deleting', this.#where(bucket, key));
    }
  }

  // --- helpers ---------------------------------------------------------------------------------

  #where(bucket: string, key?: string): string {
    return key === undefined ? `${this.name}/${bucket}` : `${this.name}/${bucket}/${key}`;
  }

  /** Parts small enough for the 10,000-part limit when the size is known. */
  #partSizeFor(size: number | undefined): number {
    return Math.max(this.#partSize, size === undefined ? 0 : Math.ceil(size / maxParts));
  }

  async #sdkList(bucket: string, prefix: string, page: PageRequest): Promise<ListedPage> {
    // StartAfter (the last key returned) instead of the opaque continuation token: a token
    // stays valid across clients and processes, like the other stores' tokens
    const out = await this.client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix === '' ? undefined : prefix,
        StartAfter: page.token,
        MaxKeys: page.maxKeys,
        // keys with characters XML 1.0 cannot carry still list
        EncodingType: 'url',
      }),
    );
    return { objects: (out.Contents ?? []).map((o) => this.#listed(o)), truncated: out.IsTruncated === true };
  }

  /**
   * The same ListObjectsV2 through the lean path, its XML read for the four fields a listing
   * returns (the SDK's schema-driven parser cost 25 ms a page); undefined: the SDK sends it.
   */
  async #leanList(bucket: string, prefix: string, page: PageRequest): Promise<ListedPage | undefined> {
    const response = await this.#lean
      ?.send('GET', bucket, '', {
        query: {
          'list-type': '2',
          'max-keys': String(page.maxKeys),
          'encoding-type': 'url',
          ...(prefix === '' ? {} : { prefix }),
          ...(page.token === undefined ? {} : { 'start-after': page.token }),
        },
      })
      // whatever the lean path does not complete, the SDK sends again (its retries, its errors)
      .catch(() => undefined);
    if (response?.status !== 200 || !response.body.includes('<ListBucketResult')) return undefined;
    const { body } = response;
    const objects = body
      .split('<Contents>')
      .slice(1)
      .map((entry): ObjectInfo => {
        const modified = xmlValue(entry, 'LastModified');
        return {
          key: decodeKey(xmlValue(entry, 'Key') ?? ''),
          size: Number(xmlValue(entry, 'Size') ?? 0),
          etag: unquote(xmlValue(entry, 'ETag')),
          lastModified: modified === undefined ? new Date(0) : new Date(modified),
          // ListObjectsV2 names checksum algorithms but never returns their values
          sha256: undefined,
        };
      });
    return { objects, truncated: xmlValue(body, 'IsTruncated') === 'true' };
  }

  #listed(o: _Object): ObjectInfo {
    return {
      key: decodeKey(o.Key ?? ''),
      size: o.Size ?? 0,
      etag: unquote(o.ETag),
      lastModified: o.LastModified ?? new Date(0),
      // ListObjectsV2 names checksum algorithms but never returns their values
      sha256: undefined,
    };
  }

  #head(bucket: string, key: string): Promise<HeadObjectCommandOutput> {
    return this.client.send(
      new HeadObjectCommand({
        Bucket: bucket,
        Key: key,
        ...(this.#checksums ? { ChecksumMode: 'ENABLED' as const } : {}),
      }),
    );
  }

  #headInfo(key: string, out: HeadObjectCommandOutput): ObjectInfo {
    return {
      key,
      size: out.ContentLength ?? 0,
      etag: unquote(out.ETag),
      lastModified: out.LastModified ?? new Date(0),
      sha256: fullObjectSha256(out.ChecksumSHA256, out.ChecksumType),
    };
  }

  /** PutObject, signed with the digest computed on the way (the lean path) or through the SDK. */
  async #putSingle(
    target: PutTarget,
    body: { chunks: Buffer[]; size: number; digest: Buffer },
  ): Promise<ObjectInfo> {
    const { digest } = body;
    // the server verifies the bytes against it and keeps it for later HEADs
    const checksum = this.#checksums ? digest.toString('base64') : undefined;
    const response = await this.#lean
      ?.send('PUT', target.bucket, target.key, {
        headers: {
          'content-type': target.contentType ?? 'application/octet-stream',
          ...(checksum === undefined ? {} : { 'x-amz-checksum-sha256': checksum }),
        },
        body: body.chunks,
        payloadHash: digest.toString('hex'),
      })
      // whatever the lean path does not complete, the SDK sends again (its retries, its errors)
      .catch(() => undefined);
    const leanEtag = response?.status === 200 ? header(response.headers, 'etag') : undefined;
    const etag =
      leanEtag ??
      (
        await this.client.send(
          new PutObjectCommand({
            Bucket: target.bucket,
            Key: target.key,
            Body: Buffer.concat(body.chunks, body.size),
            ContentLength: body.size,
            ContentType: target.contentType,
            ChecksumSHA256: checksum,
          }),
        )
      ).ETag;
    return {
      key: target.key,
      size: body.size,
      etag: unquote(etag),
      sha256: digest.toString('hex'),
      lastModified: new Date(),
    };
  }

  /**
   * CreateMultipartUpload, `parts(uploadId)`, CompleteMultipartUpload; the ETag. Aborted on any
   * failure, so nothing lingers: no parts, no visible object.
   */
  async #multipart(
    target: { bucket: string; key: string },
    create: { ContentType?: string | undefined; Metadata?: Record<string, string> | undefined },
    parts: (uploadId: string) => Promise<CompletedPart[]>,
  ): Promise<string> {
    const { bucket, key } = target;
    const created = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...create }),
    );
    const uploadId = created.UploadId ?? '';
    try {
      const uploaded = await parts(uploadId);
      const done = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: uploaded },
        }),
      );
      return unquote(done.ETag);
    } catch (err) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined);
      throw err;
    }
  }

  /** A streamed upload in parts, `queueSize` at once. */
  #putMultipart(target: PutTarget, parts: PartReader): Promise<string> {
    return this.#multipart(target, { ContentType: target.contentType }, (uploadId) =>
      this.#uploadParts(target, uploadId, parts),
    );
  }

  /** Reads and uploads the parts, `queueSize` in flight; every part settles before it returns. */
  async #uploadParts(target: PutTarget, uploadId: string, parts: PartReader): Promise<CompletedPart[]> {
    const uploaded: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    const state: { failure?: { error: unknown } } = {};
    try {
      for (let number = 1; state.failure === undefined; number++) {
        const chunks = await parts.next();
        if (chunks === undefined) break;
        const partNumber = number;
        const upload = this.#uploadPart(target, { uploadId, partNumber, chunks }).then(
          (etag) => {
            uploaded.push({ ETag: etag, PartNumber: partNumber });
          },
          (error: unknown) => {
            state.failure ??= { error };
          },
        );
        inFlight.add(upload);
        void upload.then(() => inFlight.delete(upload));
        if (inFlight.size >= this.#queueSize) await Promise.race(inFlight);
      }
    } finally {
      await Promise.all(inFlight);
    }
    if (state.failure !== undefined) throw state.failure.error;
    return uploaded.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  }

  /** One UploadPart: the lean path (unsigned payload, the chunks as read), else the SDK. */
  async #uploadPart(
    target: PutTarget,
    part: { uploadId: string; partNumber: number; chunks: Buffer[] },
  ): Promise<string> {
    const response = await this.#lean
      ?.send('PUT', target.bucket, target.key, {
        headers: { 'content-type': 'application/octet-stream' },
        query: { partNumber: String(part.partNumber), uploadId: part.uploadId },
        body: part.chunks,
      })
      // whatever the lean path does not complete, the SDK sends again (its retries, its errors)
      .catch(() => undefined);
    const leanEtag = response?.status === 200 ? header(response.headers, 'etag') : undefined;
    if (leanEtag !== undefined) return leanEtag;
    const out = await this.client.send(
      new UploadPartCommand({
        Bucket: target.bucket,
        Key: target.key,
        UploadId: part.uploadId,
        PartNumber: part.partNumber,
        Body: Buffer.concat(part.chunks),
      }),
    );
    if (out.ETag === undefined) {
      throw new Error(`part ${part.partNumber} of the upload has no ETag in the UploadPart response`);
    }
    return out.ETag;
  }

  async #singleCopy(at: CopyTarget, size: number): Promise<ObjectInfo> {
    const info = (await this.#leanCopy(at, size)) ?? (await this.#sdkCopy(at, size));
    if (info.sha256 !== undefined || !this.#checksums) return info;
    // a server that computed the checksum but returned it neither in the body nor in a header
    const copied = this.#headInfo(at.dstKey, await this.#head(at.dstBucket, at.dstKey));
    // a different ETag means another writer replaced the copy meanwhile: its hash is not ours
    return copied.etag === info.etag ? { ...info, size: copied.size, sha256: copied.sha256 } : info;
  }

  async #sdkCopy(at: CopyTarget, size: number): Promise<ObjectInfo> {
    const out = await this.client.send(
      new CopyObjectCommand({
        Bucket: at.dstBucket,
        Key: at.dstKey,
        CopySource: copySource(at.srcBucket, at.srcKey),
        ...(this.#checksums ? { ChecksumAlgorithm: 'SHA256' as const } : {}),
      }),
    );
    const result = out.CopyObjectResult;
    return {
      key: at.dstKey,
      size,
      etag: unquote(result?.ETag),
      lastModified: result?.LastModified ?? new Date(),
      // from the body (AWS S3) or the response header (MinIO; see addCopyChecksumHeaders)
      sha256: fullObjectSha256(result?.ChecksumSHA256, result?.ChecksumType),
    };
  }

  /** CopyObject through the lean path; undefined when the SDK must send it. */
  async #leanCopy(at: CopyTarget, size: number): Promise<ObjectInfo | undefined> {
    const response = await this.#lean?.send('PUT', at.dstBucket, at.dstKey, {
      headers: {
        'x-amz-copy-source': copySource(at.srcBucket, at.srcKey),
        ...(this.#checksums ? { 'x-amz-checksum-algorithm': 'SHA256' } : {}),
      },
    });
    if (response === undefined) return undefined;
    const { body, headers } = response;
    // S3 may report a failed copy with status 200 and an <Error> body
    if (response.status !== 200 || !body.includes('<CopyObjectResult')) {
      throw s3Error(response, `HTTP${response.status}`);
    }
    const modified = xmlValue(body, 'LastModified');
    return {
      key: at.dstKey,
      size,
      etag: unquote(xmlValue(body, 'ETag') ?? header(headers, 'etag')),
      lastModified: modified === undefined ? new Date() : new Date(modified),
      sha256: fullObjectSha256(
        xmlValue(body, 'ChecksumSHA256') ?? header(headers, 'x-amz-checksum-sha256'),
        xmlValue(body, 'ChecksumType') ?? header(headers, 'x-amz-checksum-type'),
      ),
    };
  }

  /** HeadObject through the lean path; undefined when the SDK must send it. */
  async #leanHead(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    const response: LeanResponse | undefined = await this.#lean?.send('HEAD', bucket, key, {
      headers: this.#checksums ? { 'x-amz-checksum-mode': 'ENABLED' } : {},
    });
    if (response === undefined) return undefined;
    if (response.status !== 200) {
      throw s3Error(response, response.status === 404 ? 'NotFound' : `HTTP${response.status}`);
    }
    const { headers } = response;
    const modified = header(headers, 'last-modified');
    return {
      key,
      size: Number(header(headers, 'content-length') ?? 0),
      etag: unquote(header(headers, 'etag')),
      lastModified: modified === undefined ? new Date(0) : new Date(modified),
      sha256: fullObjectSha256(
        header(headers, 'x-amz-checksum-sha256'),
        header(headers, 'x-amz-checksum-type'),
      ),
    };
  }

  /** CreateMultipartUpload + UploadPartCopy by byte range + Complete; aborted on any failure. */
  async #multipartCopy(at: CopyTarget): Promise<ObjectInfo> {
    // the real size and ETag: ranges from a wrong size would silently truncate the copy, and
    // If-Match on every part fails the copy if the source changes in between
    const source = await this.#head(at.srcBucket, at.srcKey).catch((err: unknown) => {
      throw mapError(err, 'reading copy source', this.#where(at.srcBucket, at.srcKey));
    });
    const size = source.ContentLength ?? 0;
    // shrunk since the caller listed it: one request does
    if (size <= this.#copyThreshold) return this.#singleCopy(at, size);
    const partSize = this.#partSizeFor(size);
    const parts = (uploadId: string): Promise<CompletedPart[]> =>
      runLimited(
        Array.from({ length: Math.ceil(size / partSize) }, (_, i) => async () => {
          const start = i * partSize;
          const end = Math.min(size, start + partSize) - 1;
          const part = await this.client.send(
            new UploadPartCopyCommand({
              Bucket: at.dstBucket,
              Key: at.dstKey,
              UploadId: uploadId,
              PartNumber: i + 1,
              CopySource: copySource(at.srcBucket, at.srcKey),
              CopySourceRange: `bytes=${start}-${end}`,
              CopySourceIfMatch: source.ETag,
            }),
          );
          return { ETag: part.CopyPartResult?.ETag, PartNumber: i + 1 } satisfies CompletedPart;
        }),
        this.#queueSize,
      );
    const etag = await this.#multipart(
      { bucket: at.dstBucket, key: at.dstKey },
      { ContentType: source.ContentType, Metadata: source.Metadata },
      parts,
    );
    return { key: at.dstKey, size, etag, lastModified: new Date(), sha256: undefined };
  }
}

interface PageRequest {
  token: string | undefined;
  maxKeys: number;
}

interface ListedPage {
  objects: ObjectInfo[];
  truncated: boolean;
}

interface PutTarget {
  bucket: string;
  key: string;
  contentType: string | undefined;
}

interface CopyTarget {
  srcBucket: string;
  srcKey: string;
  dstBucket: string;
  dstKey: string;
}
