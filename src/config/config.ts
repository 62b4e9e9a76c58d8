// The configuration: which projects exist, what each may touch (database instances, buckets),
// where buckets live (object stores), and where the catalog is. One YAML file
// (lc2-backup.yaml, or LC2_CONFIG) plus environment overrides. Secrets are never inline: a
// password or key is named by an environment variable or a file, resolved when used.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BucketName, DnsLabel, Provider } from '../../api/v1alpha1/common.ts';
import { validate } from '../../api/v1alpha1/parse.ts';
import { ValidationError } from '../errors/index.ts';

/** A secret is referenced, never written down: `{ env: NAME }` or `{ file: /path }`. */
export const SecretRef = z.union([
  z.strictObject({ env: z.string().min(1) }),
  z.strictObject({ file: z.string().min(1) }),
]);
export type SecretRef = z.infer<typeof SecretRef>;

const AwsRegion = z
  .string()
  .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as "us-east-1" or "eu-west-1"');
const RoleArn = z
  .string()
  .regex(
    /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/,
    'must be an IAM role ARN such as "arn:aws:iam::123456789012:role/lc2-backup-retail"',
  );
/** Not a secret (AWS: it prevents the confused deputy), so it may be written inline. */
const ExternalId = z
  .string()
  .regex(/^[\w+=,.@:/-]{2,1224}$/, 'must be 2-1224 of letters, digits and +=,.@:/-');

const S3Store = z.strictObject({
  type: z.literal('s3'),
  /** An S3-compatible server (MinIO, a VPC endpoint); omit for AWS S3. */
  endpoint: z.url().optional(),
  region: z.string().default('us-east-1'),
  /** Default: path-style for a custom endpoint, virtual-hosted for AWS S3. */
  forcePathStyle: z.boolean().optional(),
  /** Static keys (emulators, S3-compatible servers); omitted, the AWS default chain applies. */
  accessKeyId: SecretRef.optional(),
  secretAccessKey: SecretRef.optional(),
  /** Assume this role (from the base credentials) for every request to this store. */
  roleArn: RoleArn.optional(),
  externalId: ExternalId.optional(),
  /** STS endpoint for the role assumption (emulators, VPC endpoints); default: AWS's regional one. */
  stsEndpoint: z.url().optional(),
  /** SHA-256 checksums on writes and reads; turn off only for servers that reject them. */
  checksums: z.boolean().default(true),
});
const FileStore = z.strictObject({
  type: z.literal('file'),
  /** A directory; each bucket is a sub-directory. */
  path: z.string().min(1),
});
export const StoreConfig = z.discriminatedUnion('type', [S3Store, FileStore]);
export type StoreConfig = z.infer<typeof StoreConfig>;

export const DatabaseConfig = z.strictObject({
  /**
   * Where pg_dump/pg_restore connect. Required for the local provider; on aws, omitted means the
   * instance's endpoint from DescribeDBInstances (set it to override, e.g. a proxy or a tunnel).
   */
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).default(5432),
  database: z.string().min(1),
  user: z.string().min(1),
  password: SecretRef.optional(),
});
export type DatabaseConfig = z.infer<typeof DatabaseConfig>;

/** A project's AWS account settings: where its RDS instances are and how restores are built. */
export const AwsProjectConfig = z.strictObject({
  region: AwsRegion,
  /** Assume this role for every RDS call of the project (from the default credential chain). */
  roleArn: RoleArn.optional(),
  externalId: ExternalId.optional(),
  /** Static keys (emulators, tests); omitted, the AWS default chain (IRSA, env, profile, IMDS). */
  accessKeyId: SecretRef.optional(),
  secretAccessKey: SecretRef.optional(),
  /** Endpoint overrides (emulators such as moto, VPC interface endpoints). */
  endpoints: z.strictObject({ rds: z.url().optional(), sts: z.url().optional() }).default({}),
  /** How a snapshot restore builds its NEW instance; unset fields keep the snapshot's/RDS defaults. */
  restore: z
    .strictObject({
      instanceClass: z
        .string()
        .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, 'must be an RDS instance class such as "db.t3.medium"')
        .optional(),
      subnetGroup: z.string().min(1).optional(),
      securityGroups: z.array(z.string().min(1)).default([]),
      parameterGroup: z.string().min(1).optional(),
    })
    .default({ securityGroups: [] }),
  /** Longest wait for a snapshot or a restored instance to become available. */
  waitTimeoutMinutes: z
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(240),
});
export type AwsProjectConfig = z.infer<typeof AwsProjectConfig>;

export const ProjectConfig = z.strictObject({
  provider: Provider.optional(),
  /**
   * The Kubernetes namespaces whose requests may act for this project (globs); default
   * `proj-<projectId>-*`, the seeds' convention (proj-retail-prd).
   */
  namespaces: z.array(z.string().min(1)).optional(),
  /** Backups of this project running at once (default: controller.projectConcurrency). */
  concurrency: z.number().int().min(1).max(64).optional(),
  /** Required when the project runs on aws (its own provider, or the default). */
  aws: AwsProjectConfig.optional(),
  /** The database instances this project may back up and restore into, by instanceId. */
  databases: z.record(z.string(), DatabaseConfig).default({}),
  /** The buckets this project may read or write, each with the store it lives in. */
  buckets: z.record(BucketName, z.string().min(1)).default({}),
});
export type ProjectConfig = z.infer<typeof ProjectConfig>;

/** Liferay's generated renditions: re-created by the application, so optional in a backup. */
export const defaultGeneratedPatterns = [
  '**/thumbnails/**',
  '**/previews/**',
  '**/adaptive-media/**',
  '**/*.thumbnail.*',
  '**/document_thumbnail/**',
  '**/document_preview/**',
];

/** "90s", "30m", "24h", "7d". */
export const Duration = z
  .string()
  .regex(/^\d+[smhd]$/, 'must be a number and a unit s, m, h or d (e.g. "30m", "24h", "7d")');

export function durationMs(value: string): number {
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[value.slice(-1)] ?? 1000;
  return Number(value.slice(0, -1)) * unit;
}

/** The Jobs of `executor: job`: the controller's own image running `lc2-backup worker`. */
const JobSettings = z.strictObject({
  image: z.string().min(1).default('lc2-backup:latest'),
  serviceAccountName: z.string().min(1).default('lc2-backup-worker'),
  /** Where the worker reads the configuration (a ConfigMap mounted like the controller's). */
  configMap: z.string().min(1).optional(),
  /** A Secret whose keys become the worker's environment (the passwords the config names by env). */
  secretName: z.string().min(1).optional(),
  cpu: z.string().default('500m'),
  memory: z.string().default('512Mi'),
  /** Kills a Job that runs longer (activeDeadlineSeconds). */
  deadline: Duration.default('6h'),
  backoffLimit: z.number().int().min(0).max(10).default(1),
  /** Extra labels on worker Pods (e.g. azure.workload.identity/use: "true"). */
  podLabels: z.record(z.string(), z.string()).default({}),
});
const defaultJobSettings = {
  image: 'lc2-backup:latest',
  serviceAccountName: 'lc2-backup-worker',
  cpu: '500m',
  memory: '512Mi',
  deadline: '6h',
  backoffLimit: 1,
  podLabels: {},
};

export const Config = z.strictObject({
  /** pglite://<dir>, pglite://memory, or postgresql://user@host/db (password from catalogPassword). */
  catalog: z.string().optional(),
  catalogPassword: SecretRef.optional(),
  stores: z.record(z.string(), StoreConfig).default({}),
  projects: z.record(DnsLabel, ProjectConfig).default({}),
  controller: z
    .strictObject({
      /** Backups running at once per project, unless the project sets its own. */
      projectConcurrency: z.number().int().min(1).max(64).default(2),
      /** Backups running at once across all projects. */
      globalConcurrency: z.number().int().min(1).max(1024).default(10),
      /** The namespace of the Leases (slots, leader election); they outlive a restart. */
      namespace: z.string().min(1).default('lc2-backup'),
      /** Where data moves: in the controller process, or in a Kubernetes Job per request. */
      executor: z.enum(['inProcess', 'job']).default('inProcess'),
      job: JobSettings.default(defaultJobSettings),
      /**
       * How long a finished request stays in the API server once it is recorded in the catalog
       * ("30m", "24h", "7d"); the catalog keeps the history.
       */
      finishedTTL: Duration.default('24h'),
    })
    .default({
      projectConcurrency: 2,
      globalConcurrency: 10,
      namespace: 'lc2-backup',
      executor: 'inProcess',
      job: defaultJobSettings,
      finishedTTL: '24h',
    }),
  engine: z
    .strictObject({
      concurrency: z.number().int().min(1).max(256).default(16),
      /** Objects above this are copied in parts (S3's single-copy limit is 5 GiB). */
      multipartCopyThreshold: z
        .number()
        .int()
        .min(5 * 1024 * 1024)
        .default(5 * 1024 ** 3),
      generatedFilePatterns: z.array(z.string()).default(defaultGeneratedPatterns),
      /** Where pg_dump/pg_restore live; default: LC2_PG_BIN, else the PATH. */
      pgBin: z.string().optional(),
      /** A scratch directory enables parallel pg_restore (-j) from a downloaded dump. */
      scratchDir: z.string().optional(),
      restoreJobs: z.number().int().min(1).max(64).default(2),
      /**
       * With a scratch directory: load tables while the dump still downloads (`always`), only once
       * it is whole (`never`), or `auto`: while downloading when the PostgreSQL server is on
       * another machine or this one has cores to spare (src/components/postgres/splitRestore.ts).
       */
      loadWhileDownloading: z.enum(['auto', 'always', 'never']).default('auto'),
    })
    .default({
      concurrency: 16,
      multipartCopyThreshold: 5 * 1024 ** 3,
      generatedFilePatterns: defaultGeneratedPatterns,
      restoreJobs: 2,
      loadWhileDownloading: 'auto',
    }),
});
export type Config = z.infer<typeof Config>;

// Keys whose values would be secrets if written inline.
const secretKeys = /^(password|secret|secretAccessKey|accessKeyId|token|key)$/i;

function findInlineSecret(value: unknown, path: string[]): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  for (const [k, v] of Object.entries(value)) {
    if (secretKeys.test(k) && typeof v === 'string') return [...path, k].join('.');
    const found = findInlineSecret(v, [...path, k]);
    if (found !== undefined) return found;
  }
  return undefined;
}

function checkProjectProvider(name: string, project: ProjectConfig, source: string): void {
  if (project.provider === 'aws' && project.aws === undefined) {
    throw new ValidationError(
      `${source}: projects.${name}.aws: is required for provider aws; add at least { region: us-east-1 } (and roleArn when the project has its own role)`,
    );
  }
  if (project.provider !== 'local') return;
  for (const [id, db] of Object.entries(project.databases)) {
    if (db.host === undefined) {
      throw new ValidationError(
        `${source}: projects.${name}.databases.${id}.host: is required for provider local (only aws looks the endpoint up)`,
      );
    }
  }
}

/** Validates a configuration object; refuses inline secrets before anything else. */
export function parseConfig(raw: unknown, source: string): Config {
  const inline = findInlineSecret(raw, []);
  if (inline !== undefined) {
    throw new ValidationError(
      `${source}: ${inline}: secrets are never written in the configuration; use { env: VARIABLE } or { file: /path/to/secret } instead`,
    );
  }
  const config = validate(Config, raw ?? {}, source);
  for (const [name, project] of Object.entries(config.projects)) {
    checkProjectProvider(name, project, source);
    for (const [bucket, store] of Object.entries(project.buckets)) {
      if (!(store in config.stores)) {
        throw new ValidationError(
          `${source}: projects.${name}.buckets.${bucket}: store "${store}" is not defined (defined: ${Object.keys(config.stores).join(', ') || 'none'})`,
        );
      }
    }
  }
  return config;
}

/** Loads the file named by `path` (or LC2_CONFIG), then applies environment overrides. */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const file = path ?? env.LC2_CONFIG;
  let raw: unknown = {};
  if (file !== undefined && file !== '') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ValidationError(
        `configuration ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)}); pass --config <file> or set LC2_CONFIG`,
      );
    }
    try {
      raw = parseYaml(text);
    } catch (err) {
      throw new ValidationError(`configuration ${file}: not valid YAML: ${(err as Error).message}`);
    }
  }
  const config = parseConfig(raw, file ?? 'configuration');
  if (env.LC2_CATALOG_URL !== undefined && env.LC2_CATALOG_URL !== '') config.catalog = env.LC2_CATALOG_URL;
  return config;
}

/** Reads a referenced secret at the moment it is needed. The value is never logged. */
export function resolveSecret(ref: SecretRef, what: string, env: NodeJS.ProcessEnv = process.env): string {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined) throw new ValidationError(`${what}: environment variable ${ref.env} is not set`);
    return value;
  }
  try {
    return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ValidationError(
      `${what}: cannot read secret file ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}
