// AWS credentials for one project or store: the SDK's default chain (environment, shared
// profile, web identity / IRSA, container, instance metadata) or static keys for emulators,
// optionally exchanged for a role (STS AssumeRole with an external id). Both refresh before they
// expire: the chain and the role provider carry an expiration the SDK clients re-check on every
// request. A failure names the role and the source, never a key.
import { fromNodeProviderChain, fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { S3ClientConfig } from '@aws-sdk/client-s3';

export type CredentialProvider = Extract<NonNullable<S3ClientConfig['credentials']>, () => unknown>;
type Identity = Awaited<ReturnType<CredentialProvider>>;

export interface AwsCredentialOptions {
  region: string;
  /** Resolved static keys (emulators, S3-compatible servers); omitted: the default chain. */
  keys?: { accessKeyId: string; secretAccessKey: string } | undefined;
  roleArn?: string | undefined;
  externalId?: string | undefined;
  /** STS endpoint for the role assumption (emulators, VPC endpoints). */
  stsEndpoint?: string | undefined;
  /** Shown in CloudTrail as the role session: `lc2-backup-<project or store>`. */
  sessionName: string;
  /** For messages: whose credentials these are, e.g. `projects.retail.aws`. */
  what: string;
}

/** The first line of an SDK error, without anything that looks like a key or token. */
function safeDetail(err: unknown): string {
  const e = err as { name?: string; message?: string };
  const text = `${e.name ?? 'Error'}: ${e.message ?? String(err)}`.split('\n')[0] ?? '';
  return text.replace(/\b(A[SK]IA[0-9A-Z]{12,}|[A-Za-z0-9/+=]{40,})\b/g, '<redacted>');
}

export function awsCredentials(options: AwsCredentialOptions): CredentialProvider {
  const base: CredentialProvider =
    options.keys === undefined
      ? fromNodeProviderChain({ clientConfig: { region: options.region } })
      : () => Promise.resolve({ ...(options.keys as { accessKeyId: string; secretAccessKey: string }) });
  const provider: CredentialProvider =
    options.roleArn === undefined
      ? base
      : fromTemporaryCredentials({
          params: {
            RoleArn: options.roleArn,
            RoleSessionName: options.sessionName.replace(/[^\w+=,.@-]/g, '-').slice(0, 64),
            ...(options.externalId === undefined ? {} : { ExternalId: options.externalId }),
          },
          masterCredentials: base,
          clientConfig: {
            region: options.region,
            ...(options.stsEndpoint === undefined ? {} : { endpoint: options.stsEndpoint }),
          },
        });
  const source =
    options.roleArn === undefined
      ? `the ${options.keys === undefined ? 'AWS default credential chain (IRSA, environment, profile, instance metadata)' : 'configured access key'}`
      : `role ${options.roleArn}${options.externalId === undefined ? '' : ' (with its external id)'}`;
  return async (props?: Parameters<CredentialProvider>[0]): Promise<Identity> => {
    try {
      return await provider(props);
    } catch (err) {
      throw new Error(
        `${options.what}: cannot get AWS credentials from ${source}: ${safeDetail(err)}; check the workload identity or role trust policy (docs/providers/aws.md)`,
        { cause: err },
      );
    }
  };
}
