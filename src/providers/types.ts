// The small interfaces every provider implements. The engine talks only to these; a cloud SDK
// never leaks past its provider folder. Contracts are in the comments: implementations are
// proven against them by test/conformance/objectStore.ts.
import type { Readable } from 'node:stream';

/** What a store knows about one object. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** The store's ETag, without surrounding quotes. */
  etag: string;
  lastModified: Date;
  /**
   * Hex SHA-256 of the whole object when the store computed or kept one (S3 full-object
   * checksum, a sidecar of the file store); undefined when the caller must hash the bytes.
   */
  sha256?: string | undefined;
}

export interface ListPage {
  /** In ascending key order (byte order of the UTF-8 key). */
  objects: ObjectInfo[];
  /** Pass to the next `list` call; undefined on the last page. */
  nextToken?: string | undefined;
}

export interface PutOptions {
  /** Known length of the body, when the caller knows it (lets the store pick single-part). */
  size?: number | undefined;
  contentType?: string | undefined;
}

export interface CopyOptions {
  /** Size of the source object; the store uses multipart copy above its copy threshold. */
  size: number;
}

/**
 * A bucket-oriented object store (S3, GCS, Azure Blob, a directory on disk, memory).
 *
 * - Keys are UTF-8 strings; "/" has no special meaning to the store.
 * - Reading a key or bucket that does not exist throws NotFoundError (src/errors), never a
 *   provider-specific error; `head` returns undefined instead.
 * - `put` and `copy` overwrite an existing key; when they resolve, the object is complete and
 *   visible to `get`/`list` (no partial object is ever visible under the key).
 * - `delete` of a missing key succeeds (idempotent).
 * - Every method may be retried by the caller: none has a side effect beyond its key.
 * - Errors that retrying may cure (throttling, 5xx, connection resets) are thrown as
 *   RetryableError; anything else (permission, not found, bad request) is permanent.
 */
export interface ObjectStore {
  /** A display name for messages and the manifest, e.g. `s3://minio.local:9000` or `file:///data`. Never holds credentials. */
  readonly name: string;
  bucketExists(bucket: string): Promise<boolean>;
  /** Creates the bucket; succeeds when it already exists and is ours. */
  createBucket(bucket: string): Promise<void>;
  list(
    bucket: string,
    prefix: string,
    options?: { token?: string | undefined; limit?: number | undefined },
  ): Promise<ListPage>;
  head(bucket: string, key: string): Promise<ObjectInfo | undefined>;
  get(bucket: string, key: string): Promise<Readable>;
  /** Stores a stream (multipart when large or of unknown size) or a buffer. */
  put(bucket: string, key: string, body: Readable | Buffer, options?: PutOptions): Promise<ObjectInfo>;
  /**
   * Server-side copy inside this store (possibly across buckets). Objects above the store's
   * multipart-copy threshold (5 GiB on S3, configurable) are copied in parts. The result's
   * `sha256` is set when the store computed it during the copy.
   */
  copy(
    srcBucket: string,
    srcKey: string,
    dstBucket: string,
    dstKey: string,
    options: CopyOptions,
  ): Promise<ObjectInfo>;
  delete(bucket: string, key: string): Promise<void>;
}
