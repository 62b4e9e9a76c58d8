import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors/index.ts';
import { CatalogUnavailableError, defaultCatalogUrl, openCatalog, openPgliteCatalog } from './catalog.ts';
import { describeCatalog } from './catalogSuite.ts';
import { lockFileName } from './dirLock.ts';
import { latestSchemaVersion, migrations } from './migrations.ts';
import { describePgTarget, redact } from './sql.ts';

// One in-memory database for the whole suite: creating a PGlite instance takes seconds.
let shared: PGlite | undefined;
afterAll(async () => {
  await shared?.close();
});
describeCatalog('PGlite in memory', async () => openPgliteCatalog((shared ??= await PGlite.create())));

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'lc2-catalog-'));
}

describe('embedded catalog on disk', { timeout: 120_000 }, () => {
  it('keeps its history across close and re-open, and serves one opener at a time', async () => {
    const dataHome = await tempDir();
    try {
      const env = { XDG_DATA_HOME: dataHome };
      const dir = join(dataHome, 'lc2-backup', 'catalog');
      const first = await openCatalog(undefined, { env });
      expect(first.description).toBe(`embedded catalog in ${dir}`);
      expect(first.schema.applied).toEqual(migrations.map((m) => m.version));
      await first.recordBackupStarted({
        backupId: 'retail-prd-backup-1',
        projectId: 'retail',
        environment: 'prd',
      });
      await first.recordBackupSucceeded('retail-prd-backup-1', { dlObjectCount: 3 });

      // PGlite itself would let a second instance open (and corrupt) the same directory
      const second = openCatalog(`pglite://${dir}`);
      await expect(second).rejects.toThrow(CatalogUnavailableError);
      await expect(second).rejects.toThrow(/in use by this process/);
      expect(await readFile(join(dir, lockFileName), 'utf8')).toBe(`${process.pid}\n`);
      await first.close();
      await first.close();

      const reopened = await openCatalog(`pglite://${dir}`);
      try {
        expect(reopened.schema).toEqual({ from: latestSchemaVersion, to: latestSchemaVersion, applied: [] });
        expect(await reopened.getBackup('retail-prd-backup-1')).toMatchObject({
          state: 'Succeeded',
          dlObjectCount: 3,
        });
      } finally {
        await reopened.close();
      }
    } finally {
      await rm(dataHome, { recursive: true, force: true });
    }
  });

  it('takes over a lock left by a process that no longer runs', async () => {
    const dir = await tempDir();
    try {
      const gone = spawnSync(process.execPath, ['-e', '']).pid;
      expect(gone).toBeGreaterThan(0);
      await writeFile(join(dir, lockFileName), `${gone}\n`);
      const catalog = await openCatalog(`pglite://${dir}`);
      expect(await readFile(join(dir, lockFileName), 'utf8')).toBe(`${process.pid}\n`);
      await catalog.close();
      await expect(readFile(join(dir, lockFileName))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('opens pglite://memory', async () => {
    const catalog = await openCatalog('pglite://memory');
    try {
      expect(catalog.description).toBe('embedded catalog (in memory)');
      expect(await catalog.listBackups()).toEqual([]);
    } finally {
      await catalog.close();
    }
  });
});

describe('catalog URLs', () => {
  it('puts the default catalog in the XDG data directory', () => {
    expect(defaultCatalogUrl({ HOME: '/home/ana' })).toBe(
      'pglite:///home/ana/.local/share/lc2-backup/catalog',
    );
    expect(defaultCatalogUrl({ HOME: '/home/ana', XDG_DATA_HOME: '/data' })).toBe(
      'pglite:///data/lc2-backup/catalog',
    );
  });

  it('refuses an unknown scheme or a malformed URL without repeating the password', async () => {
    const attempts = [
      'mysql://root:s3cr3t-pw@db:3306/catalog',
      'postgresql://root:s3cr3t-pw@[::1/catalog',
      'pglite://',
    ];
    for (const url of attempts) {
      const err = await openCatalog(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).not.toContain('s3cr3t-pw');
    }
    await expect(openCatalog('mysql://root:s3cr3t-pw@db/catalog')).rejects.toThrow(
      /scheme mysql: is not supported/,
    );
  });

  it('describes a PostgreSQL target by user, host, port and database, never the password', () => {
    const config = { connectionString: 'postgresql://lc2:p%40ss%2Fword@db.internal:6543/history' };
    expect(describePgTarget(config)).toBe('lc2@db.internal:6543/history');
    expect(redact('auth failed for p@ss/word and p%40ss%2Fword', config)).toBe('auth failed for *** and ***');
    expect(redact('secret hunter2 here', { password: 'hunter2' })).toBe('secret *** here');
  });
});
