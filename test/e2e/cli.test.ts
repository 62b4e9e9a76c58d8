// The CLI as a user runs it: a configuration file, a BackupRequest file, the embedded catalog;
// exit codes and output of backup, list, describe, verify, restore and bad input.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliIn } from '../env/runCli.ts';
import { backupRequest, dropDatabase, useApp } from '../integration/engine/harness.ts';

const app = useApp({ objects: 12 });
const work = mkdtempSync(join(tmpdir(), 'lc2-cli-e2e-'));
const backupId = 'retail-prd-backup-20250301-120000';
afterAll(async () => {
  rmSync(work, { recursive: true, force: true });
  await dropDatabase('cli_clone');
});

const cli = cliIn(work);

beforeAll(() => {
  writeFileSync(join(work, 'lc2-backup.yaml'), JSON.stringify(app.config));
  const request = backupRequest(app, {}, backupId);
  writeFileSync(join(work, 'request.yaml'), JSON.stringify(request));
  const bad = {
    ...request,
    spec: { ...request.spec, database: { ...request.spec.database, retention: '7 days' }, colour: 'blue' },
  };
  writeFileSync(join(work, 'bad.yaml'), JSON.stringify(bad));
  const foreign = {
    ...request,
    spec: {
      ...request.spec,
      documentLibrary: { ...request.spec.documentLibrary, sourceBucket: app.otherBucket },
    },
  };
  writeFileSync(join(work, 'foreign.yaml'), JSON.stringify(foreign));
});

describe('lc2-backup CLI', () => {
  it('backs up from a request file, then lists, describes and verifies the backup', () => {
    const backup = cli('backup', '-f', join(work, 'request.yaml'));
    expect(backup.stderr + backup.stdout).toContain(`backup ${backupId}: Succeeded`);
    expect(backup.code).toBe(0);
    expect(backup.stderr).toMatch(/progress: documentLibrary .*objects/);

    const list = cli('list', '--json', '--project', 'retail');
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ backupId, state: 'Succeeded', projectId: 'retail' }),
    ]);

    const describeOut = cli('describe', backupId);
    expect(describeOut.stdout).toContain(
      `manifest: ${app.backupBucket}/retail/prd/20250301-120000/manifest.json`,
    );

    const verify = cli('verify', '--deep', backupId);
    expect(verify.stdout).toMatch(new RegExp(`verify --deep ${backupId}: OK`));
    expect(verify.code).toBe(0);
  });

  it('restores with flags into a new database and bucket', () => {
    const restore = cli(
      'restore',
      backupId,
      '--to-instance',
      'retail-clone-db',
      '--to-database',
      'cli_clone',
      '--to-bucket',
      app.cloneBucket,
    );
    expect(restore.stderr + restore.stdout).toContain('Succeeded');
    expect(restore.code).toBe(0);
  });

  it('exits 5 and names the bad object when a stored document is gone', async () => {
    const key = [...app.objects.keys()].find((k) => !k.includes('thumbnails')) ?? '';
    await app.store.delete(app.backupBucket, `retail/prd/20250301-120000/dl/${key}`);
    const verify = cli('verify', backupId);
    expect(verify.code).toBe(5);
    expect(verify.stdout).toContain(
      `BAD ${app.backupBucket}/retail/prd/20250301-120000/dl/${key}: document "${key}": missing`,
    );
  });

  it('exits 2 for a bad request, naming every bad field, and 3 for another project’s bucket', () => {
    const bad = cli('backup', '-f', join(work, 'bad.yaml'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('spec.colour: unknown field');
    expect(bad.stderr).toContain('spec.database.retention: must match ^\\d+[dhm]$');
    const foreign = cli('backup', '-f', join(work, 'foreign.yaml'));
    expect(foreign.code).toBe(3);
    expect(foreign.stderr).toContain(
      `spec.documentLibrary.sourceBucket: bucket "${app.otherBucket}" does not belong to project "retail"`,
    );
  });
});
