import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors/index.ts';
import { parseResource } from './index.ts';

const seedExample = readFileSync(
  join(import.meta.dirname, 'testdata', 'seed-001-backuprequest.yaml'),
  'utf8',
);

const minimal = (spec: string): string => `apiVersion: backup.liferay.cloud/v1alpha1
kind: BackupRequest
metadata: { name: b1 }
spec:
${spec}`;

const good = `  projectId: retail
  environment: prd
  database: { instanceId: retail-prd-db }
  documentLibrary: { sourceBucket: liferay-retail-prd-dl, destinationBucket: liferay-backups }`;

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('BackupRequest schema', () => {
  it('parses the seed-001 example unchanged, status included', () => {
    const req = parseResource('BackupRequest', seedExample, 'seed-001');
    expect(req.metadata.name).toBe('retail-prd-backup-20251109-143000');
    expect(req.spec).toEqual({
      projectId: 'retail',
      environment: 'prd',
      database: { type: 'snapshot', instanceId: 'retail-prd-db', retention: '7d' },
      documentLibrary: {
        sourceBucket: 'liferay-retail-prd-dl',
        destinationBucket: 'liferay-backups',
        destinationPrefix: 'retail/prd/20251109-143000/dl',
        excludeGeneratedFiles: true,
      },
      deletionPolicy: 'Retain',
    });
    expect(req.spec.provider).toBeUndefined();
    expect(req.status?.documentLibrary?.objectCount).toBe(12453);
    expect(req.status?.conditions?.[0]?.reason).toBe('BackupCompleted');
  });

  it('fills the seed defaults', () => {
    const req = parseResource('BackupRequest', minimal(good));
    expect(req.spec.database).toEqual({ type: 'snapshot', instanceId: 'retail-prd-db', retention: '7d' });
    expect(req.spec.documentLibrary.excludeGeneratedFiles).toBe(false);
  });

  it('rejects an unknown field, naming its path and the allowed fields', () => {
    const msg = errorOf(() => parseResource('BackupRequest', minimal(`${good}\n  databse: {}`)));
    expect(msg).toContain(
      'spec.databse: unknown field (allowed in spec: projectId, environment, provider, database, documentLibrary, deletionPolicy)',
    );
  });

  it('rejects a bad retention with the pattern and the value given', () => {
    const msg = errorOf(() =>
      parseResource(
        'BackupRequest',
        minimal(good.replace('instanceId: retail-prd-db', 'instanceId: x, retention: 7 days')),
      ),
    );
    expect(msg).toContain(
      'spec.database.retention: must match ^\\d+[dhm]$ (e.g. "7d", "12h", "30m") (got "7 days")',
    );
  });

  it('rejects an unknown provider, listing the allowed ones', () => {
    const msg = errorOf(() => parseResource('BackupRequest', minimal(`${good}\n  provider: ibm`)));
    expect(msg).toContain('spec.provider: must be one of "aws", "gcp", "azure", "local" (got "ibm")');
  });

  it('reports every problem at once, missing fields included', () => {
    const msg = errorOf(() => parseResource('BackupRequest', minimal('  projectId: Retail\n  database: {}')));
    expect(msg).toContain('spec.projectId: must be a lower-case DNS label');
    expect(msg).toContain('spec.environment: is required (missing)');
    expect(msg).toContain('spec.database.instanceId: is required (missing)');
    expect(msg).toContain('spec.documentLibrary: is required (missing)');
  });

  it('refuses a document of another kind or more than one document', () => {
    expect(errorOf(() => parseResource('RestoreRequest', seedExample))).toContain(
      'kind: expected "RestoreRequest" (got "BackupRequest")',
    );
    expect(errorOf(() => parseResource('BackupRequest', `${seedExample}\n---\n${seedExample}`))).toContain(
      'found 2',
    );
  });
});

describe('RestoreRequest schema', () => {
  const restore = (source: string): string => `apiVersion: backup.liferay.cloud/v1alpha1
kind: RestoreRequest
metadata: { name: r1 }
spec:
  projectId: retail
  environment: prd
  source: ${source}
  target:
    database: { instanceId: local-pg, databaseName: retail_clone }
    documentLibrary: { bucket: retail-clone-dl }`;

  it('takes a backup by id into new targets', () => {
    const req = parseResource('RestoreRequest', restore('{ backupId: retail-prd-backup-20251109-143000 }'));
    expect(req.spec.target.mode).toBe('new');
  });

  it('needs exactly one way to name the backup', () => {
    expect(errorOf(() => parseResource('RestoreRequest', restore('{}')))).toContain(
      'spec.source: set exactly one of backupRequestName or backupId',
    );
  });
});

describe('BackupSchedule schema', () => {
  it('defaults the schedule to 0 2 * * * and rejects a malformed one', () => {
    const schedule = (extra: string): string => `apiVersion: backup.liferay.cloud/v1alpha1
kind: BackupSchedule
metadata: { name: nightly }
spec:
${extra}  template:
    spec:
${good.replace(/^/gm, '    ')}`;
    expect(parseResource('BackupSchedule', schedule('')).spec.schedule).toBe('0 2 * * *');
    expect(errorOf(() => parseResource('BackupSchedule', schedule('  schedule: every night\n')))).toContain(
      'spec.schedule: must be a five-field cron expression',
    );
  });
});
