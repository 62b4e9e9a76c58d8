// One ObjectStore per configured store name, opened on first use and shared, so that two
// buckets in the same store are recognised as such (server-side copy between them).
import type { Config, StoreConfig } from '../config/config.ts';
import { resolveSecret } from '../config/config.ts';
import { FileObjectStore } from '../providers/local/fileObjectStore.ts';
import { S3ObjectStore } from '../providers/s3/objectStore.ts';
import type { ObjectStore } from '../providers/types.ts';
import { withRetry } from '../storage/retry.ts';

export class StoreRegistry {
  private readonly open = new Map<string, ObjectStore>();
  private readonly config: Config;

  constructor(config: Config) {
    this.config = config;
  }

  get(name: string): ObjectStore {
    let store = this.open.get(name);
    if (store === undefined) {
      const cfg = this.config.stores[name];
      if (cfg === undefined) throw new Error(`store "${name}" is not defined in the configuration`);
      store = withRetry(openStore(name, cfg, this.config.engine));
      this.open.set(name, store);
    }
    return store;
  }
}

function openStore(name: string, cfg: StoreConfig, engine: Config['engine']): ObjectStore {
  if (cfg.type === 'file') return new FileObjectStore(cfg.path);
  const credentials =
    cfg.accessKeyId && cfg.secretAccessKey
      ? {
          accessKeyId: resolveSecret(cfg.accessKeyId, `stores.${name}.accessKeyId`),
          secretAccessKey: resolveSecret(cfg.secretAccessKey, `stores.${name}.secretAccessKey`),
        }
      : undefined;
  return new S3ObjectStore({
    endpoint: cfg.endpoint,
    region: cfg.region,
    forcePathStyle: cfg.forcePathStyle,
    credentials,
    multipartCopyThreshold: engine.multipartCopyThreshold,
    // every copy in flight may also hold a HEAD (its checksum) and a listing page
    maxSockets: engine.concurrency * 2 + 4,
  });
}
