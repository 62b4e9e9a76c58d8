// Planning a backup: every check that needs no data — schema, provider, tenancy — so a bad
// request is refused before any byte is read.
import type { BackupRequest } from '../../../api/v1alpha1/backupRequest.ts';
import type { Provider } from '../../../api/v1alpha1/common.ts';
import type { Config, DatabaseConfig } from '../../config/config.ts';
import { resolveSecret } from '../../config/config.ts';
import {
  allowedBucket,
  allowedDatabase,
  projectOf,
  providerFor,
  type ResolvedBucket,
} from '../../config/policy.ts';
import type { PgConnection } from '../../components/postgres/postgres.ts';
import { ValidationError } from '../../errors/index.ts';
import { backupIdentity, backupLayout, type BackupLayout } from '../../format/layout.ts';

export interface BackupPlan {
  backupId: string;
  timestamp: string;
  startedAt: Date;
  projectId: string;
  environment: string;
  provider: Provider;
  layout: BackupLayout;
  database: { instanceId: string; type: 'snapshot' | 'dump'; conn: PgTarget; retention: string };
  source: ResolvedBucket;
  destination: ResolvedBucket;
  excludedPatterns: string[];
  /** The BackupRequest this came from: both set (a resource in a namespace) or neither (a CLI file). */
  request: { crName?: string; crNamespace?: string };
}

/** A connection whose host the provider may still have to look up (aws without `host`). */
export type PgTarget = Omit<PgConnection, 'host'> & { host?: string | undefined };

const snapshotProviders = ['aws', 'gcp', 'azure'];
const availableProviders: readonly Provider[] = ['local', 'aws'];

export function checkProvider(provider: Provider, dbType: 'snapshot' | 'dump'): void {
  if (provider === 'local' && dbType === 'snapshot') {
    throw new ValidationError(
      `spec.database.type: "snapshot" is not supported by the local provider (supported by ${snapshotProviders.join(', ')}); use type: dump`,
    );
  }
  if (!availableProviders.includes(provider)) {
    throw new ValidationError(
      `spec.provider: "${provider}" is not available in this version yet (available: ${availableProviders.join(', ')}); set provider to one of them or configure the project's provider`,
    );
  }
}

/** Provider settings a project needs before anything runs on that provider. */
export function checkProjectProvider(config: Config, projectId: string, provider: Provider): void {
  if (provider === 'aws' && projectOf(config, projectId).aws === undefined) {
    throw new ValidationError(
      `projects.${projectId}.aws: is required for provider aws (the request's or the project's default); add at least { region: us-east-1 } to the configuration, or set provider: local`,
    );
  }
}

/** The database connection for a dump: the configured host, else (aws) looked up later. */
export function pgTarget(
  projectId: string,
  provider: Provider,
  instanceId: string,
  db: DatabaseConfig,
): PgTarget {
  if (db.host === undefined && provider !== 'aws') {
    throw new ValidationError(
      `projects.${projectId}.databases.${instanceId}.host: is required for provider ${provider} (only aws looks the endpoint up); add the host`,
    );
  }
  const password =
    db.password === undefined
      ? undefined
      : resolveSecret(db.password, `projects.${projectId}.databases.${instanceId}.password`);
  return { instanceId, host: db.host, port: db.port, database: db.database, user: db.user, password };
}

export function planBackup(config: Config, request: BackupRequest, now: Date): BackupPlan {
  const { spec } = request;
  const project = projectOf(config, spec.projectId);
  const provider = providerFor(project, spec.provider);
  checkProvider(provider, spec.database.type);
  checkProjectProvider(config, spec.projectId, provider);
  const db = allowedDatabase(spec.projectId, project, spec.database.instanceId, 'spec.database.instanceId');
  const source = allowedBucket(
    config,
    spec.projectId,
    spec.documentLibrary.sourceBucket,
    'spec.documentLibrary.sourceBucket',
  );
  const destination = allowedBucket(
    config,
    spec.projectId,
    spec.documentLibrary.destinationBucket,
    'spec.documentLibrary.destinationBucket',
  );
  if (source.bucket === destination.bucket && source.storeName === destination.storeName) {
    throw new ValidationError(
      `spec.documentLibrary.destinationBucket: "${destination.bucket}" is also the source bucket; back up into a separate bucket`,
    );
  }
  const { backupId, timestamp } = backupIdentity(spec.projectId, spec.environment, request.metadata, now);
  return {
    backupId,
    timestamp,
    startedAt: now,
    projectId: spec.projectId,
    environment: spec.environment,
    provider,
    layout: backupLayout(spec.projectId, spec.environment, timestamp, spec.documentLibrary.destinationPrefix),
    database: {
      instanceId: spec.database.instanceId,
      type: spec.database.type,
      retention: spec.database.retention,
      // a snapshot needs no password: do not require its secret
      conn: pgTarget(
        spec.projectId,
        provider,
        spec.database.instanceId,
        spec.database.type === 'snapshot' ? { ...db, password: undefined } : db,
      ),
    },
    source,
    destination,
    excludedPatterns: spec.documentLibrary.excludeGeneratedFiles ? config.engine.generatedFilePatterns : [],
    request:
      request.metadata.name !== undefined && request.metadata.namespace !== undefined
        ? { crName: request.metadata.name, crNamespace: request.metadata.namespace }
        : {},
  };
}
