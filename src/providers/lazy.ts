// Providers whose SDK is loaded on first use. The AWS SDK clients cost ~50 MB of memory and
// ~100 ms at start; a controller or CLI that never touches S3 or RDS (file stores, pg_dump
// databases, the in-memory provider of the benchmarks) should not pay for them. The registries
// hand out these proxies synchronously; the first call imports and opens the real provider,
// later calls go straight to it. An error opening it (a bad endpoint) is the first call's error,
// and every later call's.
import type { Readable } from 'node:stream';
import type {
  CopyOptions,
  DatabaseInstance,
  DatabaseSnapshot,
  DatabaseSnapshots,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  WaitOptions,
} from './types.ts';

/** A provider known by its name now, imported and opened on the first call. */
class Lazy<T> {
  readonly name: string;
  #opened: Promise<T> | undefined;
  readonly #open: () => Promise<T>;

  constructor(name: string, open: () => Promise<T>) {
    this.name = name;
    this.#open = open;
  }

  /** The provider, imported and opened on the first call. */
  load(): Promise<T> {
    this.#opened ??= this.#open();
    return this.#opened;
  }
}

/** An ObjectStore opened on first use (`name` is known before). Has no `digest`. */
export class LazyObjectStore extends Lazy<ObjectStore> implements ObjectStore {
  async bucketExists(bucket: string): Promise<boolean> {
    return (await this.load()).bucketExists(bucket);
  }

  async createBucket(bucket: string): Promise<void> {
    return (await this.load()).createBucket(bucket);
  }

  async list(
    bucket: string,
    prefix: string,
    options?: { token?: string | undefined; limit?: number | undefined },
  ): Promise<ListPage> {
    return (await this.load()).list(bucket, prefix, options);
  }

  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    return (await this.load()).head(bucket, key);
  }

  async get(bucket: string, key: string): Promise<Readable> {
    return (await this.load()).get(bucket, key);
  }

  async put(bucket: string, key: string, body: Readable | Buffer, options?: PutOptions): Promise<ObjectInfo> {
    return (await this.load()).put(bucket, key, body, options);
  }

  // eslint-disable-next-line max-params -- the ObjectStore signature
  async copy(
    srcBucket: string,
    srcKey: string,
    dstBucket: string,
    dstKey: string,
    options: CopyOptions,
  ): Promise<ObjectInfo> {
    return (await this.load()).copy(srcBucket, srcKey, dstBucket, dstKey, options);
  }

  async delete(bucket: string, key: string): Promise<void> {
    return (await this.load()).delete(bucket, key);
  }
}

/** A DatabaseSnapshots opened on first use (`name` is known before). */
export class LazySnapshots<T extends DatabaseSnapshots = DatabaseSnapshots>
  extends Lazy<T>
  implements DatabaseSnapshots
{
  async describeInstance(instanceId: string): Promise<DatabaseInstance> {
    return (await this.load()).describeInstance(instanceId);
  }

  async createSnapshot(input: {
    instanceId: string;
    snapshotId: string;
    tags: Record<string, string>;
  }): Promise<{ snapshot: DatabaseSnapshot; adopted: boolean }> {
    return (await this.load()).createSnapshot(input);
  }

  async getSnapshot(snapshotId: string): Promise<DatabaseSnapshot | undefined> {
    return (await this.load()).getSnapshot(snapshotId);
  }

  async waitForSnapshot(snapshotId: string, options?: WaitOptions): Promise<DatabaseSnapshot> {
    return (await this.load()).waitForSnapshot(snapshotId, options);
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    return (await this.load()).deleteSnapshot(snapshotId);
  }

  async restoreInstance(input: {
    snapshotId: string;
    instanceId: string;
    tags: Record<string, string>;
  }): Promise<{ instance: DatabaseInstance; adopted: boolean }> {
    return (await this.load()).restoreInstance(input);
  }

  async waitForInstance(instanceId: string, options?: WaitOptions): Promise<DatabaseInstance> {
    return (await this.load()).waitForInstance(instanceId, options);
  }

  async deleteRestoredInstance(instanceId: string): Promise<void> {
    return (await this.load()).deleteRestoredInstance(instanceId);
  }
}
