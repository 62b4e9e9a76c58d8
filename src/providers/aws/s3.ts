// The S3 store as lc2-backup runs it against AWS (and S3-compatible servers): S3ObjectStore
// configured, not forked. Adds credentials from the default chain or an assumed role, the
// SDK's adaptive retry mode (client-side rate limiting once S3 says SlowDown), a keep-alive
// connection pool sized to the copy concurrency, socket timeouts that turn a hung connection
// into a retryable error, and path-style addressing only where it is needed (custom endpoints;
// AWS S3 is virtual-hosted).
import { S3ObjectStore } from '../s3/objectStore.ts';
import { awsCredentials } from './credentials.ts';

export interface AwsS3StoreOptions {
  /** For messages and the role session name: the store's name in the configuration. */
  storeName: string;
  region: string;
  /** An S3-compatible endpoint (MinIO, a VPC endpoint); omit for AWS S3. */
  endpoint?: string | undefined;
  /** Default: true with a custom endpoint, false for AWS S3. */
  forcePathStyle?: boolean | undefined;
  keys?: { accessKeyId: string; secretAccessKey: string } | undefined;
  roleArn?: string | undefined;
  externalId?: string | undefined;
  stsEndpoint?: string | undefined;
  /** Objects copied at once by the engine: the connection pool is sized from it. */
  concurrency: number;
  multipartCopyThreshold?: number | undefined;
  /** Part size of multipart uploads and copies (default 64 MiB). */
  partSize?: number | undefined;
  checksums?: boolean | undefined;
}

/** Connect quickly or fail (retryable); a socket idle this long is a hung request. */
const connectionTimeoutMs = 10_000;
const requestTimeoutMs = 120_000;

export function awsS3Store(options: AwsS3StoreOptions): S3ObjectStore {
  const useChain = options.keys === undefined && options.roleArn === undefined;
  return new S3ObjectStore({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
    // the SDK resolves its own default chain when given none; a role needs it explicitly
    credentials: useChain
      ? undefined
      : awsCredentials({
          region: options.region,
          keys: options.keys,
          roleArn: options.roleArn,
          externalId: options.externalId,
          stsEndpoint: options.stsEndpoint,
          sessionName: `lc2-backup-${options.storeName}`,
          what: `stores.${options.storeName}`,
        }),
    multipartCopyThreshold: options.multipartCopyThreshold,
    partSize: options.partSize,
    checksums: options.checksums,
    // a copy in flight, a HEAD where the server leaves the copy's checksum out, and the listing
    // page fetched ahead
    maxSockets: options.concurrency * 2 + 4,
    retryMode: 'adaptive',
    maxAttempts: 4,
    connectionTimeoutMs,
    requestTimeoutMs,
  });
}
