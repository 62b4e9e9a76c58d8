// Planning a backup: every check that needs no data — schema, provider, tenancy — so a bad
// request is refused before any byte is read.
import type { BackupRequest } from '../../../api/v1alpha1/backupRequest.ts';
import type { Provider } from '../../../api/v1alpha1/common.ts';
import type { Config } from '../../config/config.ts';
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
  database: { instanceId: string; conn: PgConnection; retention: string };
  source: ResolvedBucket;
  destination: ResolvedBucket;
  excludedPatterns: string[];
  /** The BackupRequest this came from: both set (a resource in a namespace) or neither (a CLI file). */
  request: { crName?: string; crNamespace?: string };
}

const snapshotProviders = ['aws', 'gcp', 'azure'];

export function checkProvider(provider: Provider, dbType: 'snapshot' | 'dump'): void {
  if (provider === 'local' && dbType === 'snapshot') {
    throw new ValidationError(
      `spec.database.type: "snapshot" is not supported by the local provider (supported by ${snapshotProviders.join(', ')}); use type: dump`,
    );
  }
  if (provider !== 'local') {
    throw new ValidationError(
      `spec.provider: "${provider}" is not available in this version yet (available: local); set provider: local or configure the project's provider as local`,
    );
  }
}

export function planBackup(config: Config, request: BackupRequest, now: Date): BackupPlan {
  const { spec } = request;
  const project = projectOf(config, spec.projectId);
  const provider = providerFor(project, spec.provider);
  checkProvider(provider, spec.database.type);
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
  const password =
    db.password === undefined
      ? undefined
      : resolveSecret(
          db.password,
          `projects.${spec.projectId}.databases.${spec.database.instanceId}.password`,
        );
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
      retention: spec.database.retention,
      conn: {
        instanceId: spec.database.instanceId,
        host: db.host,
        port: db.port,
        database: db.database,
        user: db.user,
        password,
      },
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
