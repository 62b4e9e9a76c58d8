// One ObjectStore per configured store name, opened on first use and shared, so that two
// buckets in the same store are recognised as such (server-side copy between them).
import type { Config, StoreConfig } from '../config/config.ts';
import { resolveSecret } from '../config/config.ts';
import { FileObjectStore } from '../providers/local/fileObjectStore.ts';
import { LazyObjectStore } from '../providers/lazy.ts';
import { s3StoreName } from '../providers/names.ts';
import type { ObjectStore } from '../providers/types.ts';
import { withRetry, type RetryOptions } from '../storage/retry.ts';

export class StoreRegistry {
  private readonly open = new Map<string, ObjectStore>();
  private readonly config: Config;
  private readonly retry: RetryOptions;

  /** `retry`: hooks on every provider call (retries counted in metrics, tracing spans). */
  constructor(config: Config, retry: RetryOptions = {}) {
    this.config = config;
    this.retry = retry;
  }

  get(name: string): ObjectStore {
    let store = this.open.get(name);
    if (store === undefined) {
      const cfg = this.config.stores[name];
      if (cfg === undefined) throw new Error(`store "${name}" is not defined in the configuration`);
      store = withRetry(openStore(name, cfg, this.config.engine), this.retry);
      this.open.set(name, store);
    }
    return store;
  }
}

function openStore(name: string, cfg: StoreConfig, engine: Config['engine']): ObjectStore {
  if (cfg.type === 'file') return new FileObjectStore(cfg.path);
  const keys =
    cfg.accessKeyId && cfg.secretAccessKey
      ? {
          accessKeyId: resolveSecret(cfg.accessKeyId, `stores.${name}.accessKeyId`),
          secretAccessKey: resolveSecret(cfg.secretAccessKey, `stores.${name}.secretAccessKey`),
        }
      : undefined;
  const options = {
    storeName: name,
    endpoint: cfg.endpoint,
    region: cfg.region,
    forcePathStyle: cfg.forcePathStyle,
    keys,
    roleArn: cfg.roleArn,
    externalId: cfg.externalId,
    stsEndpoint: cfg.stsEndpoint,
    checksums: cfg.checksums,
    multipartCopyThreshold: engine.multipartCopyThreshold,
    concurrency: engine.concurrency,
  };
  // the AWS SDK is loaded when the store is first used
  const open = async (): Promise<ObjectStore> => (await import('../providers/aws/s3.ts')).awsS3Store(options);
  return new LazyObjectStore(s3StoreName(cfg.region, cfg.endpoint), open);
}
