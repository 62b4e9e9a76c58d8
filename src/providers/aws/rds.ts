// DatabaseSnapshots on Amazon RDS for PostgreSQL (AWS SDK v3): manual DB snapshots with a
// deterministic id (adopted on retry), waits with PercentProgress, deletion, and restores into a
// NEW instance built from the project's configuration. Everything it changes must carry the
// project's ownership tag, checked BEFORE the changing call.
import {
  CreateDBSnapshotCommand,
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  RestoreDBInstanceFromDBSnapshotCommand,
  type DBInstance,
  type DBSnapshot,
  type Tag,
} from '@aws-sdk/client-rds';
import { NotFoundError, PolicyError, RetryableError, ValidationError } from '../../errors/index.ts';
import {
  ownershipTags,
  type DatabaseInstance,
  type DatabaseSnapshot,
  type DatabaseSnapshots,
  type WaitOptions,
} from '../types.ts';
import type { CredentialProvider } from './credentials.ts';
import { waitUntilReady } from './wait.ts';
import { rdsName } from '../names.ts';

const GiB = 1024 ** 3;

export interface RdsRestoreSettings {
  instanceClass?: string | undefined;
  subnetGroup?: string | undefined;
  securityGroups: string[];
  parameterGroup?: string | undefined;
}

export interface RdsSnapshotsOptions {
  /** The project every snapshot and restored instance must belong to (its ownership tag). */
  projectId: string;
  region: string;
  /** An RDS-compatible endpoint (moto, a VPC endpoint); omit for AWS. */
  endpoint?: string | undefined;
  credentials?: CredentialProvider | undefined;
  restore: RdsRestoreSettings;
  /** Longest wait for a snapshot or an instance (default 4 h). */
  waitTimeoutMs?: number | undefined;
  /** Poll delays (default 2 s doubling to 30 s); tests shorten them. */
  pollDelayMs?: { initial: number; max: number } | undefined;
  /** Attempts per request inside the SDK (default 5, adaptive: slows down when throttled). */
  maxAttempts?: number | undefined;
  /** The configuration path of the project's AWS settings, for messages (`projects.retail.aws`). */
  configPath?: string | undefined;
}

type SdkError = Error & { $metadata?: { httpStatusCode?: number }; Code?: string; code?: string };

const transientNames = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottled',
  'ServiceUnavailable',
  'InternalFailure',
  'InternalError',
  'TimeoutError',
  'RequestTimeout',
]);
const networkCodes = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'EAI_AGAIN']);

const snapshotFailed: Record<string, string> = {
  failed:
    'RDS could not take it; the failed backup removes it, so run the request again (check the instance is healthy and not out of storage)',
  deleted: 'it was deleted while being taken; run the request again',
};
const instanceFailed: Record<string, string> = {
  failed: 'RDS could not create it; delete it and restore again (see its RDS events)',
  'incompatible-restore':
    'the snapshot cannot be restored with these settings; check aws.restore (instance class, parameter group) and restore again',
  'incompatible-parameters': 'fix the parameter group named in aws.restore.parameterGroup and restore again',
  'incompatible-network': 'fix aws.restore.subnetGroup / securityGroups and restore again',
  'storage-full': 'the restored instance is out of storage; restore to a larger instance',
  'inaccessible-encryption-credentials':
    "the snapshot's KMS key is not usable by RDS; grant it and restore again",
};

function isTransient(e: SdkError, code: string, status: number | undefined): boolean {
  return (
    transientNames.has(code) ||
    status === 429 ||
    (status !== undefined && status >= 500) ||
    networkCodes.has(e.code ?? '')
  );
}

function tagRecord(tags: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

function tagList(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function toSnapshot(s: DBSnapshot): DatabaseSnapshot {
  return {
    snapshotId: s.DBSnapshotIdentifier ?? '',
    instanceId: s.DBInstanceIdentifier ?? '',
    status: s.Status ?? 'unknown',
    percentProgress: s.PercentProgress ?? (s.Status === 'available' ? 100 : 0),
    engine: s.Engine ?? '',
    engineVersion: s.EngineVersion ?? '',
    sizeBytes: (s.AllocatedStorage ?? 0) * GiB,
    createdAt: s.SnapshotCreateTime,
    tags: tagRecord(s.TagList),
  };
}

function toInstance(i: DBInstance): DatabaseInstance {
  return {
    instanceId: i.DBInstanceIdentifier ?? '',
    status: i.DBInstanceStatus ?? 'unknown',
    engine: i.Engine ?? '',
    engineVersion: i.EngineVersion ?? '',
    endpoint:
      i.Endpoint?.Address === undefined
        ? undefined
        : { host: i.Endpoint.Address, port: i.Endpoint.Port ?? 5432 },
    allocatedBytes: (i.AllocatedStorage ?? 0) * GiB,
    tags: tagRecord(i.TagList),
  };
}

export class RdsSnapshots implements DatabaseSnapshots {
  readonly name: string;
  readonly client: RDSClient;
  readonly #o: RdsSnapshotsOptions;
  readonly #config: string;

  constructor(options: RdsSnapshotsOptions) {
    this.#o = options;
    this.#config = options.configPath ?? `projects.${options.projectId}.aws`;
    this.name = rdsName(options.region, options.endpoint);
    this.client = new RDSClient({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      retryMode: 'adaptive',
      maxAttempts: options.maxAttempts ?? 5,
    });
  }

  async describeInstance(instanceId: string): Promise<DatabaseInstance> {
    try {
      const out = await this.client.send(
        new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }),
      );
      const found = out.DBInstances?.[0];
      if (found === undefined) throw this.#missingInstance(instanceId);
      return toInstance(found);
    } catch (err) {
      throw this.#mapError(err, `describing RDS instance "${instanceId}"`);
    }
  }

  async getSnapshot(snapshotId: string): Promise<DatabaseSnapshot | undefined> {
    try {
      const out = await this.client.send(
        new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId }),
      );
      const found = out.DBSnapshots?.[0];
      return found === undefined ? undefined : toSnapshot(found);
    } catch (err) {
      const mapped = this.#mapError(err, `describing RDS snapshot "${snapshotId}"`);
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  async createSnapshot(input: {
    instanceId: string;
    snapshotId: string;
    tags: Record<string, string>;
  }): Promise<{ snapshot: DatabaseSnapshot; adopted: boolean }> {
    // a retried backup finds its snapshot here, and another project's is refused, before any
    // CreateDBSnapshot call
    const existing = await this.getSnapshot(input.snapshotId);
    if (existing !== undefined) return { snapshot: this.#adoptable(existing, input), adopted: true };
    try {
      const out = await this.client.send(
        new CreateDBSnapshotCommand({
          DBInstanceIdentifier: input.instanceId,
          DBSnapshotIdentifier: input.snapshotId,
          Tags: tagList(input.tags),
        }),
      );
      if (out.DBSnapshot === undefined) throw new Error('CreateDBSnapshot returned no snapshot');
      return { snapshot: toSnapshot(out.DBSnapshot), adopted: false };
    } catch (err) {
      if ((err as SdkError).name === 'DBSnapshotAlreadyExistsFault') {
        // created between our look and our call (a concurrent retry): adopt it the same way
        const raced = await this.getSnapshot(input.snapshotId);
        if (raced !== undefined) return { snapshot: this.#adoptable(raced, input), adopted: true };
      }
      throw this.#mapError(
        err,
        `creating RDS snapshot "${input.snapshotId}" of instance "${input.instanceId}"`,
      );
    }
  }

  waitForSnapshot(snapshotId: string, options: WaitOptions = {}): Promise<DatabaseSnapshot> {
    return waitUntilReady(
      {
        what: `RDS snapshot "${snapshotId}"`,
        poll: async () => {
          const snapshot = await this.getSnapshot(snapshotId);
          if (snapshot === undefined) {
            throw new NotFoundError(
              `RDS snapshot "${snapshotId}" disappeared while being taken (deleted outside lc2-backup?); run the request again`,
            );
          }
          return snapshot;
        },
        state: (s) => ({ status: s.status, percent: s.percentProgress }),
        ready: 'available',
        failed: snapshotFailed,
        ...this.#delays(),
      },
      options,
    );
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    const existing = await this.getSnapshot(snapshotId);
    if (existing === undefined) return;
    this.#requireOwned(`RDS snapshot "${snapshotId}"`, existing.tags);
    try {
      await this.client.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: snapshotId }));
    } catch (err) {
      const mapped = this.#mapError(err, `deleting RDS snapshot "${snapshotId}"`);
      if (!(mapped instanceof NotFoundError)) throw mapped;
    }
  }

  async restoreInstance(input: {
    snapshotId: string;
    instanceId: string;
    tags: Record<string, string>;
  }): Promise<{ instance: DatabaseInstance; adopted: boolean }> {
    const snapshot = await this.getSnapshot(input.snapshotId);
    if (snapshot === undefined) {
      throw new NotFoundError(
        `RDS snapshot "${input.snapshotId}" does not exist in ${this.name}; it was deleted (retention?) — restore another backup`,
      );
    }
    this.#requireOwned(`RDS snapshot "${input.snapshotId}"`, snapshot.tags);
    const existing = await this.describeInstance(input.instanceId).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (existing !== undefined) return { instance: this.#adoptableInstance(existing, input), adopted: true };
    const r = this.#o.restore;
    try {
      const out = await this.client.send(
        new RestoreDBInstanceFromDBSnapshotCommand({
          DBSnapshotIdentifier: input.snapshotId,
          DBInstanceIdentifier: input.instanceId,
          ...(r.instanceClass === undefined ? {} : { DBInstanceClass: r.instanceClass }),
          ...(r.subnetGroup === undefined ? {} : { DBSubnetGroupName: r.subnetGroup }),
          ...(r.securityGroups.length === 0 ? {} : { VpcSecurityGroupIds: r.securityGroups }),
          ...(r.parameterGroup === undefined ? {} : { DBParameterGroupName: r.parameterGroup }),
          Tags: tagList(input.tags),
        }),
      );
      if (out.DBInstance === undefined)
        throw new Error('RestoreDBInstanceFromDBSnapshot returned no instance');
      return { instance: toInstance(out.DBInstance), adopted: false };
    } catch (err) {
      throw this.#mapError(
        err,
        `restoring RDS snapshot "${input.snapshotId}" into new instance "${input.instanceId}"`,
      );
    }
  }

  waitForInstance(instanceId: string, options: WaitOptions = {}): Promise<DatabaseInstance> {
    return waitUntilReady(
      {
        what: `RDS instance "${instanceId}"`,
        poll: () => this.describeInstance(instanceId),
        state: (i) => ({ status: i.status }),
        ready: 'available',
        failed: instanceFailed,
        ...this.#delays(),
      },
      options,
    );
  }

  async deleteRestoredInstance(instanceId: string): Promise<void> {
    const existing = await this.describeInstance(instanceId).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (existing === undefined) return;
    this.#requireOwned(`RDS instance "${instanceId}"`, existing.tags);
    if (existing.tags[ownershipTags.restoreId] === undefined) {
      throw new PolicyError(
        `RDS instance "${instanceId}" was not created by an lc2-backup restore; it is left alone`,
      );
    }
    try {
      await this.client.send(
        new DeleteDBInstanceCommand({
          DBInstanceIdentifier: instanceId,
          SkipFinalSnapshot: true,
          DeleteAutomatedBackups: true,
        }),
      );
    } catch (err) {
      const mapped = this.#mapError(err, `deleting restored RDS instance "${instanceId}"`);
      if (!(mapped instanceof NotFoundError)) throw mapped;
    }
  }

  // --- helpers ---------------------------------------------------------------------------------

  #delays(): { initialDelayMs?: number; maxDelayMs?: number; defaultTimeoutMs?: number } {
    return {
      ...(this.#o.pollDelayMs === undefined
        ? {}
        : { initialDelayMs: this.#o.pollDelayMs.initial, maxDelayMs: this.#o.pollDelayMs.max }),
      ...(this.#o.waitTimeoutMs === undefined ? {} : { defaultTimeoutMs: this.#o.waitTimeoutMs }),
    };
  }

  #requireOwned(what: string, tags: Record<string, string>): void {
    const owner = tags[ownershipTags.project];
    if (owner !== this.#o.projectId) {
      throw new PolicyError(
        `${what} belongs to ${owner === undefined ? 'no lc2-backup project (it has no lc2-backup/project tag)' : `project "${owner}"`}, not "${this.#o.projectId}"; it is left alone`,
      );
    }
  }

  #adoptable(
    existing: DatabaseSnapshot,
    input: { instanceId: string; snapshotId: string; tags: Record<string, string> },
  ): DatabaseSnapshot {
    this.#requireOwned(`RDS snapshot "${input.snapshotId}"`, existing.tags);
    const backupId = input.tags[ownershipTags.backupId];
    if (existing.instanceId !== input.instanceId || existing.tags[ownershipTags.backupId] !== backupId) {
      throw new PolicyError(
        `RDS snapshot "${input.snapshotId}" already exists for instance "${existing.instanceId}" and backup "${existing.tags[ownershipTags.backupId] ?? '?'}", not this request's; delete it or rename the request`,
      );
    }
    return existing;
  }

  #adoptableInstance(
    existing: DatabaseInstance,
    input: { instanceId: string; tags: Record<string, string> },
  ): DatabaseInstance {
    const same =
      existing.tags[ownershipTags.project] === this.#o.projectId &&
      existing.tags[ownershipTags.restoreId] !== undefined &&
      existing.tags[ownershipTags.backupId] === input.tags[ownershipTags.backupId];
    if (!same) {
      throw new ValidationError(
        `spec.target.database.instanceId: RDS instance "${input.instanceId}" already exists; restores go into a NEW instance: choose another id`,
      );
    }
    return existing;
  }

  #missingInstance(instanceId: string): NotFoundError {
    return new NotFoundError(
      `RDS instance "${instanceId}" does not exist in ${this.name}; check the instance id and ${this.#config}.region`,
    );
  }

  /** Translates an SDK error into the contract's classes; names the object and what to do. */
  #mapError(err: unknown, action: string): Error {
    if (err instanceof NotFoundError || err instanceof PolicyError || err instanceof ValidationError)
      return err;
    if (err instanceof RetryableError) return err;
    const e = (err instanceof Error ? err : new Error(String(err))) as SdkError;
    const code = e.name.replace(/Fault$/, '');
    const status = e.$metadata?.httpStatusCode;
    const hint = this.#hint(code);
    if (hint !== undefined) return new hint.error(`${action}: ${hint.text} (${code})`, { cause: err });
    if (isTransient(e, code, status))
      return new RetryableError(`${action} failed transiently: ${code}: ${e.message}; retry later`, {
        cause: err,
      });
    if (
      status === 403 ||
      /AccessDenied|UnauthorizedOperation|InvalidClientTokenId|SignatureDoesNotMatch/.test(code)
    )
      return new Error(
        `${action}: access denied (${code}); grant the RDS permissions listed in docs/providers/aws.md to the role of ${this.#config}`,
        { cause: err },
      );
    return new Error(`${action} failed: ${code}: ${e.message}`, { cause: err });
  }

  #hint(code: string): { error: new (m: string, o?: ErrorOptions) => Error; text: string } | undefined {
    const r = `${this.#config}.restore`;
    const hints: Record<string, { error: new (m: string, o?: ErrorOptions) => Error; text: string }> = {
      DBInstanceNotFound: {
        error: NotFoundError,
        text: `the instance does not exist in ${this.name}; check the instance id and ${this.#config}.region`,
      },
      DBSnapshotNotFound: { error: NotFoundError, text: `the snapshot does not exist in ${this.name}` },
      SnapshotQuotaExceeded: {
        error: Error,
        text: `the account's manual snapshot quota in ${this.#o.region} is used up; delete old snapshots (shorten retention) or ask AWS for a higher quota`,
      },
      InstanceQuotaExceeded: {
        error: Error,
        text: `the account's DB instance quota in ${this.#o.region} is used up; delete unused clones or raise the quota`,
      },
      StorageQuotaExceeded: {
        error: Error,
        text: `the account's RDS storage quota in ${this.#o.region} is used up; free storage or raise the quota`,
      },
      DBSubnetGroupNotFound: {
        error: ValidationError,
        text: `${r}.subnetGroup "${this.#o.restore.subnetGroup ?? ''}" does not exist in ${this.#o.region}; fix the name`,
      },
      DBParameterGroupNotFound: {
        error: ValidationError,
        text: `${r}.parameterGroup "${this.#o.restore.parameterGroup ?? ''}" does not exist in ${this.#o.region}; fix the name`,
      },
      InvalidVPCNetworkState: {
        error: ValidationError,
        text: `${r}.subnetGroup / securityGroups do not fit the VPC; fix them`,
      },
      DBInstanceAlreadyExists: {
        error: ValidationError,
        text: 'the instance already exists; restores go into a NEW instance: choose another spec.target.database.instanceId',
      },
      InvalidDBInstanceState: {
        error: RetryableError,
        text: 'the instance is busy (not "available"); retry when it is',
      },
      InvalidDBSnapshotState: {
        error: RetryableError,
        text: 'the snapshot is busy (not "available"); retry when it is',
      },
    };
    return hints[code];
  }
}
