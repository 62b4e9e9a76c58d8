// One DatabaseSnapshots per project, opened on first use from the project's provider settings
// (region, role, restore settings, endpoint overrides). The engine reaches native snapshots
// only through this and the DatabaseSnapshots interface; no SDK is imported here.
import type { Config } from '../config/config.ts';
import { resolveSecret } from '../config/config.ts';
import { projectOf } from '../config/policy.ts';
import { ValidationError } from '../errors/index.ts';
import type { RdsSnapshots } from '../providers/aws/rds.ts';
import { LazySnapshots } from '../providers/lazy.ts';
import { rdsName } from '../providers/names.ts';
import type { PgConnection } from '../components/postgres/postgres.ts';
import type { DatabaseSnapshots } from '../providers/types.ts';
import { withSpan } from '../observability/tracing.ts';

export interface SnapshotProviders {
  /** The project's snapshot provider; ValidationError when the project has none configured. */
  get(projectId: string): DatabaseSnapshots;
}

/** Every call of a snapshot provider in a tracing span named `snapshots.<method>`. */
export function tracedSnapshots(inner: DatabaseSnapshots): DatabaseSnapshots {
  const span = <T>(method: string, id: string, call: () => Promise<T>): Promise<T> =>
    withSpan(`snapshots.${method}`, { 'lc2.provider': inner.name, 'lc2.resource': id }, call);
  return {
    name: inner.name,
    describeInstance: (id) => span('describeInstance', id, () => inner.describeInstance(id)),
    createSnapshot: (input) => span('createSnapshot', input.snapshotId, () => inner.createSnapshot(input)),
    getSnapshot: (id) => span('getSnapshot', id, () => inner.getSnapshot(id)),
    waitForSnapshot: (id, options) => span('waitForSnapshot', id, () => inner.waitForSnapshot(id, options)),
    deleteSnapshot: (id) => span('deleteSnapshot', id, () => inner.deleteSnapshot(id)),
    restoreInstance: (input) => span('restoreInstance', input.instanceId, () => inner.restoreInstance(input)),
    waitForInstance: (id, options) => span('waitForInstance', id, () => inner.waitForInstance(id, options)),
    deleteRestoredInstance: (id) =>
      span('deleteRestoredInstance', id, () => inner.deleteRestoredInstance(id)),
  };
}

export class SnapshotRegistry implements SnapshotProviders {
  private readonly open = new Map<string, DatabaseSnapshots>();
  private readonly config: Config;
  private readonly tuning: { pollDelayMs?: { initial: number; max: number }; traced?: boolean };

  /**
   * `pollDelayMs` shortens the waits' polling (tests against emulators); `traced` puts a tracing
   * span around every provider call.
   */
  constructor(
    config: Config,
    tuning: { pollDelayMs?: { initial: number; max: number }; traced?: boolean } = {},
  ) {
    this.config = config;
    this.tuning = tuning;
  }

  get(projectId: string): DatabaseSnapshots {
    let provider = this.open.get(projectId);
    if (provider === undefined) {
      provider = this.openFor(projectId);
      if (this.tuning.traced === true) provider = tracedSnapshots(provider);
      this.open.set(projectId, provider);
    }
    return provider;
  }

  private openFor(projectId: string): DatabaseSnapshots {
    const aws = projectOf(this.config, projectId).aws;
    const path = `projects.${projectId}.aws`;
    if (aws === undefined) {
      throw new ValidationError(
        `${path}: is required for provider aws (RDS snapshots, endpoint lookups); add at least { region: us-east-1 }`,
      );
    }
    const keys =
      aws.accessKeyId !== undefined && aws.secretAccessKey !== undefined
        ? {
            accessKeyId: resolveSecret(aws.accessKeyId, `${path}.accessKeyId`),
            secretAccessKey: resolveSecret(aws.secretAccessKey, `${path}.secretAccessKey`),
          }
        : undefined;
    const useChain = keys === undefined && aws.roleArn === undefined;
    const pollDelayMs = this.tuning.pollDelayMs;
    // the AWS SDK is loaded when the project's snapshots are first used
    const open = async (): Promise<RdsSnapshots> => {
      const [{ RdsSnapshots }, { awsCredentials }] = await Promise.all([
        import('../providers/aws/rds.ts'),
        import('../providers/aws/credentials.ts'),
      ]);
      return new RdsSnapshots({
        projectId,
        region: aws.region,
        endpoint: aws.endpoints.rds,
        credentials: useChain
          ? undefined
          : awsCredentials({
              region: aws.region,
              keys,
              roleArn: aws.roleArn,
              externalId: aws.externalId,
              stsEndpoint: aws.endpoints.sts,
              sessionName: `lc2-backup-${projectId}`,
              what: path,
            }),
        restore: aws.restore,
        waitTimeoutMs: aws.waitTimeoutMinutes * 60_000,
        pollDelayMs,
        configPath: path,
      });
    };
    return new LazySnapshots(rdsName(aws.region, aws.endpoints.rds), open);
  }
}

const defaults = new WeakMap<Config, SnapshotRegistry>();

/** The context's providers, else one registry per configuration object. */
export function snapshotsFor(
  ctx: { config: Config; snapshots?: SnapshotProviders | undefined },
  projectId: string,
): DatabaseSnapshots {
  if (ctx.snapshots !== undefined) return ctx.snapshots.get(projectId);
  let registry = defaults.get(ctx.config);
  if (registry === undefined) {
    registry = new SnapshotRegistry(ctx.config);
    defaults.set(ctx.config, registry);
  }
  return registry.get(projectId);
}

/**
 * The connection pg_dump/pg_restore use: the configured host (an override: proxy, tunnel, test
 * bed), else the instance's endpoint from the provider (aws: DescribeDBInstances).
 */
export async function connectionFor(
  ctx: { config: Config; snapshots?: SnapshotProviders | undefined },
  projectId: string,
  target: Omit<PgConnection, 'host'> & { host?: string | undefined },
): Promise<PgConnection> {
  if (target.host !== undefined) return { ...target, host: target.host };
  const instance = await snapshotsFor(ctx, projectId).describeInstance(target.instanceId);
  if (instance.endpoint === undefined) {
    throw new ValidationError(
      `RDS instance "${target.instanceId}" has no endpoint yet (status "${instance.status}"); wait until it is available, or set projects.${projectId}.databases.${target.instanceId}.host`,
    );
  }
  // no host configured: the endpoint is the instance's, port included
  return { ...target, host: instance.endpoint.host, port: instance.endpoint.port };
}
