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
   * When set it is the real SHA-256 of the bytes, never a multipart composite.
   */
  sha256?: string | undefined;
}

export interface ListPage {
  /** In ascending key order (byte order of the UTF-8 key). */
  objects: ObjectInfo[];
  /**
   * Pass to the next `list` call; undefined on the last page. Every store uses the last key of
   * the page (S3's StartAfter), so a token stays valid across processes and store instances.
   */
  nextToken?: string | undefined;
}

export interface PutOptions {
  /**
   * Known length of the body, when the caller knows it. A body of another length fails the put
   * (ValidationError) and stores nothing: a truncated source stream never becomes an object.
   */
  size?: number | undefined;
  contentType?: string | undefined;
}

export interface CopyOptions {
  /**
   * Size of the source object; the store uses multipart copy above its copy threshold (a
   * multipart copy re-reads the real size first). A single-part copy may report this size.
   */
  size: number;
}

/**
 * A bucket-oriented object store (S3, GCS, Azure Blob, a directory on disk, memory).
 *
 * - Keys are UTF-8 strings; "/" has no special meaning to the store.
 * - Reading a key or bucket that does not exist throws NotFoundError (src/errors), never a
 *   provider-specific error; `head` returns undefined instead (for a missing bucket too: S3's
 *   HEAD cannot tell the two apart). Writing to, listing or deleting in a missing bucket throws
 *   NotFoundError as well.
 * - `put` and `copy` overwrite an existing key; when they resolve, the object is complete and
 *   visible to `get`/`list` (no partial object is ever visible under the key).
 * - `delete` of a missing key succeeds (idempotent).
 * - `put` takes over a stream body: it reads it to the end, and destroys it if the put fails (so
 *   a pipeline feeding it does not hang).
 * - Every method may be retried by the caller: none has a side effect beyond its key (a `put`
 *   of a stream needs a fresh stream to be retried).
 * - A key may be both an object and the "directory" of others (`a/b`, `a/b/c`); MinIO accepts
 *   such keys but leaves the nested ones out of listings. The file store rejects keys with
 *   empty, "." or ".." segments (ValidationError), e.g. S3 "folder" markers ending in "/".
 * - Errors that retrying may cure (throttling, 5xx, connection resets) are thrown as
 *   RetryableError; anything else (permission, not found, bad request) is permanent.
 * - `lastModified` of a `put`/`copy` result may be the local clock at completion (S3 does not
 *   return the new object's time); `list`/`head` give the store's own.
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
  /**
   * Stores a stream (multipart when large or of unknown size) or a buffer. Stores that see the
   * bytes (all of them today) return their SHA-256.
   */
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
