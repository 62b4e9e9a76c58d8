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

/** What a store's own read-back of an object found (`ObjectStore.digest`). */
export interface ObjectDigest {
  /** Bytes read. */
  size: number;
  /** Hex SHA-256 of those bytes. */
  sha256: string;
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
  /**
   * Optional: reads the object's bytes now and hashes them inside the store, for stores that do
   * so faster than `get` plus hashing the stream (the file store: reused buffers instead of a
   * fresh one per chunk). Always re-reads every byte — never a checksum kept beside the object
   * (verify --deep relies on that). A missing key or bucket throws NotFoundError, as `get` does.
   * Callers use `sha256OfObject` (src/components/documentLibrary/copy.ts), which falls back to
   * `get` for stores without it.
   */
  digest?(bucket: string, key: string): Promise<ObjectDigest>;
}

/** Tags every snapshot and restored instance carries, so ownership is checked before any change. */
export const ownershipTags = {
  project: 'lc2-backup/project',
  environment: 'lc2-backup/environment',
  backupId: 'lc2-backup/backup-id',
  restoreId: 'lc2-backup/restore-id',
  managedBy: 'lc2-backup/managed-by',
} as const;

/** A PostgreSQL database instance as its provider reports it. */
export interface DatabaseInstance {
  instanceId: string;
  /** The provider's lifecycle word, e.g. `available`, `creating`, `failed`. */
  status: string;
  engine: string;
  engineVersion: string;
  /** Where clients connect; undefined while the provider is still creating the instance. */
  endpoint?: { host: string; port: number } | undefined;
  /** Allocated storage in bytes. */
  allocatedBytes: number;
  tags: Record<string, string>;
}

/** A native snapshot of a database instance. */
export interface DatabaseSnapshot {
  snapshotId: string;
  instanceId: string;
  /** The provider's lifecycle word: `creating`, `available`, `failed`, `deleting`, … */
  status: string;
  /** 0–100 while the snapshot is taken; 100 once available. */
  percentProgress: number;
  engine: string;
  engineVersion: string;
  /** The snapshot's allocated storage in bytes (recorded as the manifest's `database.size`). */
  sizeBytes: number;
  createdAt?: Date | undefined;
  tags: Record<string, string>;
}

export interface WaitOptions {
  /** Aborting stops the wait (the resource itself is left as it is). */
  signal?: AbortSignal | undefined;
  /** Called on every poll with the provider's percentage (when it gives one) and status. */
  onProgress?: (percent: number, status: string) => void;
  /** Give up after this long (default: the provider's, hours for RDS). */
  timeoutMs?: number | undefined;
}

/**
 * Native snapshots of PostgreSQL instances (RDS, Cloud SQL, Azure Database), as seen by ONE
 * project: an implementation is opened for a project and checks the `lc2-backup/project` tag of
 * everything it changes.
 *
 * - Identifiers are chosen by the caller and deterministic (the snapshot id derives from the
 *   backup id, src/format/layout.ts), so a retried backup finds its own snapshot:
 *   `createSnapshot` of an id that exists ADOPTS it (`adopted: true`) when its tags name the same
 *   project and backup, and throws PolicyError when they name another — a snapshot of another
 *   project is never touched.
 * - A missing instance or snapshot is a NotFoundError naming it (`getSnapshot` returns
 *   undefined); `deleteSnapshot` of a missing snapshot succeeds (idempotent) and refuses
 *   (PolicyError) a snapshot of another project BEFORE the delete call.
 * - `restoreInstance` creates a NEW instance from a snapshot (class, network and parameters from
 *   the project's configuration); an existing instance id is adopted only when it was restored
 *   from the same snapshot for the same project, otherwise ValidationError (restores never
 *   overwrite an instance).
 * - Waits poll with capped backoff, report progress, stop on the abort signal, and fail with
 *   the resource's name and state when it reaches a terminal failure (`failed`, …).
 * - Throttling, 5xx and connection resets that outlast the SDK's own retries are RetryableError;
 *   waits ride them out. Quotas and permissions are permanent errors that say what to do.
 * - Errors and names never carry credentials.
 */
export interface DatabaseSnapshots {
  /** For messages and the manifest, e.g. `rds://us-east-1`. Never holds credentials. */
  readonly name: string;
  describeInstance(instanceId: string): Promise<DatabaseInstance>;
  createSnapshot(input: {
    instanceId: string;
    snapshotId: string;
    tags: Record<string, string>;
  }): Promise<{ snapshot: DatabaseSnapshot; adopted: boolean }>;
  getSnapshot(snapshotId: string): Promise<DatabaseSnapshot | undefined>;
  /** Resolves once the snapshot is available; throws when it fails or vanishes. */
  waitForSnapshot(snapshotId: string, options?: WaitOptions): Promise<DatabaseSnapshot>;
  deleteSnapshot(snapshotId: string): Promise<void>;
  restoreInstance(input: {
    snapshotId: string;
    instanceId: string;
    tags: Record<string, string>;
  }): Promise<{ instance: DatabaseInstance; adopted: boolean }>;
  /** Resolves once the instance is available (with an endpoint). */
  waitForInstance(instanceId: string, options?: WaitOptions): Promise<DatabaseInstance>;
  /**
   * Deletes an instance this tool restored (tagged managed-by lc2-backup and this project), with
   * no final snapshot: the undo of a failed restore. Refuses any other instance (PolicyError).
   * Missing: succeeds.
   */
  deleteRestoredInstance(instanceId: string): Promise<void>;
}
