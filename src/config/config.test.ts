import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicyError } from '../errors/index.ts';
import { loadConfig, parseConfig, resolveSecret } from './config.ts';
import { allowedBucket, allowedDatabase, projectOf, providerFor } from './policy.ts';

const raw = {
  stores: {
    minio: { type: 's3', endpoint: 'http://127.0.0.1:9000' },
    disk: { type: 'file', path: '/srv/backups' },
  },
  projects: {
    retail: {
      provider: 'local',
      databases: {
        'retail-prd-db': { host: 'db', database: 'retail', user: 'app', password: { env: 'RETAIL_PW' } },
      },
      buckets: { 'liferay-retail-prd-dl': 'minio', 'liferay-backups': 'disk' },
    },
    drupal: { buckets: { 'drupal-files': 'minio' } },
  },
};

describe('configuration', () => {
  it('parses projects, stores and engine defaults', () => {
    const config = parseConfig(raw, 'lc2-backup.yaml');
    expect(config.engine.concurrency).toBe(16);
    expect(config.engine.multipartCopyThreshold).toBe(5 * 1024 ** 3);
    expect(config.projects.retail?.databases['retail-prd-db']?.port).toBe(5432);
  });

  it('refuses inline secrets and unknown stores, naming the path', () => {
    expect(() => parseConfig({ stores: { s: { type: 's3', secretAccessKey: 'AKIA…' } } }, 'f.yaml')).toThrow(
      'f.yaml: stores.s.secretAccessKey: secrets are never written in the configuration',
    );
    expect(() =>
      parseConfig({ projects: { retail: { buckets: { 'my-bucket': 'nowhere' } } } }, 'f.yaml'),
    ).toThrow('f.yaml: projects.retail.buckets.my-bucket: store "nowhere" is not defined (defined: none)');
    expect(() => parseConfig({ projects: { Retail: {} } }, 'f.yaml')).toThrow(/projects\.Retail/);
  });

  it('loads a file, lets LC2_CATALOG_URL override the catalog, and explains a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lc2-config-'));
    const file = join(dir, 'lc2-backup.yaml');
    writeFileSync(file, 'catalog: pglite://memory\nprojects: {}\n');
    expect(loadConfig(file, {}).catalog).toBe('pglite://memory');
    expect(loadConfig(file, { LC2_CATALOG_URL: 'postgresql://h/db' }).catalog).toBe('postgresql://h/db');
    expect(() => loadConfig(join(dir, 'missing.yaml'), {})).toThrow(
      /missing\.yaml: cannot read it \(ENOENT\); pass --config/,
    );
  });

  it('resolves secrets from the environment or a file only when asked', () => {
    expect(resolveSecret({ env: 'PW' }, 'x', { PW: 's3cret' })).toBe('s3cret');
    expect(() => resolveSecret({ env: 'PW' }, 'projects.retail.databases.db.password', {})).toThrow(
      'projects.retail.databases.db.password: environment variable PW is not set',
    );
    const dir = mkdtempSync(join(tmpdir(), 'lc2-secret-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    expect(resolveSecret({ file: join(dir, 'pw') }, 'x')).toBe('from-file');
  });
});

describe('tenancy policy', () => {
  const config = parseConfig(raw, 'test');

  it('gives a project only its own instances and buckets', () => {
    expect(allowedDatabase('retail', projectOf(config, 'retail'), 'retail-prd-db', 'f').host).toBe('db');
    expect(allowedBucket(config, 'retail', 'liferay-backups', 'f')).toMatchObject({ storeName: 'disk' });
    expect(() =>
      allowedBucket(config, 'drupal', 'liferay-backups', 'spec.documentLibrary.destinationBucket'),
    ).toThrow(PolicyError);
    expect(() =>
      allowedBucket(config, 'drupal', 'liferay-backups', 'spec.documentLibrary.destinationBucket'),
    ).toThrow(
      'spec.documentLibrary.destinationBucket: bucket "liferay-backups" does not belong to project "drupal" (its buckets: drupal-files)',
    );
    expect(() => projectOf(config, 'bank')).toThrow(
      'spec.projectId: project "bank" is not configured (configured: retail, drupal)',
    );
  });

  it('defaults the provider to the project’s, else aws as in the seed', () => {
    expect(providerFor(projectOf(config, 'retail'), undefined)).toBe('local');
    expect(providerFor(projectOf(config, 'drupal'), undefined)).toBe('aws');
    expect(providerFor(projectOf(config, 'retail'), 'gcp')).toBe('gcp');
  });

  it("reads a project's AWS settings with defaults, and requires them for provider aws", () => {
    const config = parseConfig(
      {
        projects: {
          retail: {
            provider: 'aws',
            aws: {
              region: 'eu-west-1',
              roleArn: 'arn:aws:iam::123456789012:role/lc2-backup-retail',
              externalId: 'retail-7f3a',
              restore: { instanceClass: 'db.t3.medium', securityGroups: ['sg-0abc'] },
            },
            // on aws the host is looked up (DescribeDBInstances) unless set
            databases: { 'retail-prd-db': { database: 'lportal', user: 'backup' } },
          },
        },
      },
      'f.yaml',
    );
    const aws = config.projects.retail?.aws;
    expect(aws).toMatchObject({ region: 'eu-west-1', waitTimeoutMinutes: 240, endpoints: {} });
    expect(aws?.restore).toEqual({ instanceClass: 'db.t3.medium', securityGroups: ['sg-0abc'] });
    expect(() => parseConfig({ projects: { retail: { provider: 'aws' } } }, 'f.yaml')).toThrow(
      'f.yaml: projects.retail.aws: is required for provider aws',
    );
    expect(() =>
      parseConfig({ projects: { retail: { provider: 'aws', aws: { region: 'Ireland' } } } }, 'f.yaml'),
    ).toThrow(/projects\.retail\.aws\.region: must be an AWS region/);
    expect(() =>
      parseConfig(
        { projects: { retail: { provider: 'aws', aws: { region: 'us-east-1', roleArn: 'lc2-role' } } } },
        'f.yaml',
      ),
    ).toThrow(/projects\.retail\.aws\.roleArn: must be an IAM role ARN/);
  });

  it('refuses inline AWS keys and a local database without a host', () => {
    expect(() =>
      parseConfig(
        { projects: { retail: { aws: { region: 'us-east-1', secretAccessKey: 'wJalrXUtnFEMI' } } } },
        'f.yaml',
      ),
    ).toThrow('f.yaml: projects.retail.aws.secretAccessKey: secrets are never written in the configuration');
    expect(() =>
      parseConfig(
        { projects: { retail: { provider: 'local', databases: { db: { database: 'd', user: 'u' } } } } },
        'f.yaml',
      ),
    ).toThrow('f.yaml: projects.retail.databases.db.host: is required for provider local');
  });
});
