// Bad input and faults: each gets a clear error naming the field or object and what to do, no
// manifest, a Failed catalog row with the reason (never a password), and no partial backup left.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listAll } from '../../../src/components/documentLibrary/copy.ts';
import { parseConfig } from '../../../src/config/config.ts';
import { runBackup } from '../../../src/engine/backup/backup.ts';
import type { EngineContext } from '../../../src/engine/context.ts';
import { readAll } from '../../../src/engine/manifests.ts';
import { runRestore } from '../../../src/engine/restore/restore.ts';
import { restoreFromStore } from '../../../src/components/postgres/postgres.ts';
import { IntegrityError, NotFoundError, PolicyError, ValidationError } from '../../../src/errors/index.ts';
import type { ObjectInfo, ObjectStore } from '../../../src/providers/types.ts';
import { testbed, withPg } from '../../env/fixtures.ts';
import { backupRequest, dropDatabase, dumpText, restoreRequest, storedHashes, useApp } from './harness.ts';

const app = useApp({ objects: 24 });

// Each test names its own backup (the id comes from the request name) so rows never collide.
let seq = 0;
const nextName = (): string => `retail-prd-backup-20250101-0000${String(seq++).padStart(2, '0')}`;

/** What a backup left in the backup bucket (its id's timestamp is its root). */
async function backupObjects(backupId: string): Promise<string[]> {
  const keys: string[] = [];
  const root = `retail/prd/${backupId.slice(-15)}/`;
  for await (const o of listAll({ store: app.store, bucket: app.backupBucket, prefix: root }))
    keys.push(o.key);
  return keys;
}

async function expectFailedCleanly(backupId: string, reason: RegExp): Promise<void> {
  const row = await app.catalog.getBackup(backupId);
  expect(row?.state).toBe('Failed');
  expect(row?.failureReason).toMatch(reason);
  expect(await backupObjects(backupId)).toEqual([]);
}

/** The app's stores, with one store's behaviour changed for a test. */
function withStore(wrap: (store: ObjectStore) => ObjectStore): EngineContext {
  const wrapped = wrap(app.store);
  return { ...app.ctx, stores: { get: (name) => (name === 'minio' ? wrapped : app.ctx.stores.get(name)) } };
}

describe('refused before any byte is read', () => {
  it('a bucket of another project, naming the field and the project’s buckets', async () => {
    const request = backupRequest(
      { sourceBucket: app.otherBucket, backupBucket: app.backupBucket },
      {},
      nextName(),
    );
    const err = await runBackup(app.ctx, request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyError);
    expect(String(err)).toContain(
      `spec.documentLibrary.sourceBucket: bucket "${app.otherBucket}" does not belong to project "retail"`,
    );
    expect(await app.catalog.listBackups({ projectId: 'retail', state: 'Failed' })).toEqual([]);
  });

  it('a database instance of another project', async () => {
    const request = backupRequest(app, { database: { type: 'dump', instanceId: 'other-db' } }, nextName());
    await expect(runBackup(app.ctx, request)).rejects.toThrow(
      /spec\.database\.instanceId: instance "other-db" does not belong to project "retail"/,
    );
  });

  it('a provider the build does not offer, and a snapshot on the local provider', async () => {
    await expect(runBackup(app.ctx, backupRequest(app, { provider: 'gcp' }, nextName()))).rejects.toThrow(
      /spec\.provider: "gcp" is not available/,
    );
    const snapshot = backupRequest(
      app,
      { database: { type: 'snapshot', instanceId: 'retail-prd-db' } },
      nextName(),
    );
    const err = await runBackup(app.ctx, snapshot).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(String(err)).toContain(
      'spec.database.type: "snapshot" is not supported by the local provider (supported by aws, gcp, azure); use type: dump',
    );
  });

  it('a configuration with an inline password', () => {
    expect(() =>
      parseConfig(
        {
          projects: {
            retail: { databases: { db: { host: 'h', database: 'd', user: 'u', password: 'hunter2' } } },
          },
        },
        'lc2-backup.yaml',
      ),
    ).toThrow(
      'lc2-backup.yaml: projects.retail.databases.db.password: secrets are never written in the configuration; use { env: VARIABLE } or { file: /path/to/secret } instead',
    );
  });
});

describe('failures during the run', () => {
  it('a missing source bucket', async () => {
    const name = nextName();
    const request = backupRequest(
      { sourceBucket: app.cloneBucket, backupBucket: app.backupBucket },
      {},
      name,
    );
    const err = await runBackup(app.ctx, request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(String(err)).toContain(
      `spec.documentLibrary.sourceBucket: bucket "${app.cloneBucket}" does not exist`,
    );
    await expectFailedCleanly(name, /does not exist/);
  });

  it('an unreachable database', async () => {
    const name = nextName();
    const request = backupRequest(app, { database: { type: 'dump', instanceId: 'retail-down-db' } }, name);
    await expect(runBackup(app.ctx, request)).rejects.toThrow(
      /database instance "retail-down-db" \(.*:1\/.*\): cannot connect .*check that the server runs/,
    );
    await expectFailedCleanly(name, /cannot connect/);
  });

  it('a wrong password: named as such, the password itself nowhere', async () => {
    const canary = 'canary-Pa55word-7f3a';
    process.env.LC2_TEST_WRONG_PASSWORD = canary;
    const bed = testbed();
    const config = parseConfig(
      {
        ...app.config,
        projects: {
          retail: {
            ...app.config.projects.retail,
            databases: {
              'retail-prd-db': {
                host: bed.postgres.host,
                port: bed.postgres.port,
                database: app.sourceDb,
                user: bed.postgres.user,
                password: { env: 'LC2_TEST_WRONG_PASSWORD' },
              },
            },
          },
        },
      },
      'test',
    );
    const name = nextName();
    const err = await runBackup({ ...app.ctx, config }, backupRequest(app, {}, name)).catch(
      (e: unknown) => e,
    );
    expect(String(err)).toContain(
      'password authentication failed for user "lc2"; check the password secret configured for this instance',
    );
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain(canary);
    await expectFailedCleanly(name, /password authentication failed/);
    expect(JSON.stringify(await app.catalog.getBackup(name))).not.toContain(canary);
  });

  it('an object deleted while the copy runs: named, and the partial backup removed', async () => {
    const victim =
      [...app.objects.keys()].find((k) => !k.includes('thumbnails') && app.objects.get(k)?.length !== 0) ??
      '';
    // the object goes between the listing and its own copy, as when a user deletes it mid-backup
    const ctx = withStore((store) => ({
      ...store,
      copy: async (...args: Parameters<ObjectStore['copy']>) => {
        if (args[1] === victim) await store.delete(app.sourceBucket, victim);
        return store.copy(...args);
      },
    }));
    const name = nextName();
    const err = await runBackup(ctx, backupRequest(app, {}, name)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(String(err)).toContain(
      `document "${victim}" in bucket "${app.sourceBucket}" disappeared during the backup`,
    );
    await expectFailedCleanly(name, /disappeared during the backup/);
    const body = app.objects.get(victim) ?? Buffer.alloc(0);
    await app.store.put(app.sourceBucket, victim, body, { size: body.length });
  });

  it('an interrupted run: stops, records why, removes its partial output', async () => {
    const abort = new AbortController();
    let copies = 0;
    const ctx = withStore((store) => ({
      ...store,
      copy: async (...args: Parameters<ObjectStore['copy']>) => {
        if (++copies === 3) abort.abort(new Error('interrupted by signal'));
        return store.copy(...args);
      },
    }));
    const name = nextName();
    await expect(runBackup({ ...ctx, signal: abort.signal }, backupRequest(app, {}, name))).rejects.toThrow(
      /interrupted/,
    );
    await expectFailedCleanly(name, /interrupted/);
  });
});

describe('restore faults', () => {
  const tiny = mkdtempSync(join(tmpdir(), 'lc2-tinyfs-'));
  afterAll(() => {
    execFileSync('umount', [tiny]);
    rmSync(tiny, { recursive: true, force: true });
  });

  it('a full scratch disk: a clear error, the new database dropped, the catalog row Failed', async () => {
    // a 64 KiB filesystem is smaller than the dump (the machines run as root, as CI does)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', tiny]);
    const backup = await runBackup(app.ctx, backupRequest(app, {}, nextName()));
    expect(backup.header.database.artifact?.uncompressedSize).toBeGreaterThan(128 * 1024);
    const ctx = { ...app.ctx, config: { ...app.config, engine: { ...app.config.engine, scratchDir: tiny } } };
    const request = restoreRequest(backup.header.backupId, {
      databaseName: 'full_scratch',
      bucket: app.cloneBucket,
      prefix: 'full',
    });
    const err = await runRestore(ctx, request).catch((e: unknown) => e);
    expect(String(err)).toContain(`engine.scratchDir ${tiny}: no space left for the database dump`);
    const exists = await withPg('postgres', (c) =>
      c.query("SELECT 1 FROM pg_database WHERE datname = 'full_scratch'"),
    );
    expect(exists.rowCount).toBe(0);
    const [row] = await app.catalog.listRestores({ backupId: backup.header.backupId });
    expect(row).toMatchObject({ state: 'Failed' });
    // the documents, restored at the same time, are removed too
    expect(await storedHashes(app.store, app.cloneBucket, 'full/')).toEqual(new Map());
    await dropDatabase('full_scratch');
  });

  it('a database that exists is refused before either step starts, and is left as it was', async () => {
    const backup = await runBackup(app.ctx, backupRequest(app, {}, nextName()));
    await dropDatabase('taken_db');
    await withPg('postgres', (c) => c.query('CREATE DATABASE taken_db'));
    await withPg('taken_db', (c) =>
      c.query("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('mine')"),
    );
    const request = restoreRequest(backup.header.backupId, {
      databaseName: 'taken_db',
      bucket: app.cloneBucket,
      prefix: 'taken',
    });
    // restore ids are per second: this test's own second, so it never meets another test's restore
    const ctx = { ...app.ctx, now: () => new Date('2025-03-01T00:00:01Z') };
    const err = await runRestore(ctx, request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(String(err)).toContain('database "taken_db" already exists');
    // the component itself never reports a database it did not create as created
    let reported = false;
    const { host, port, user, password } = testbed().postgres;
    const direct = restoreFromStore({
      conn: { instanceId: 'retail-clone-db', host, port, user, password, database: 'taken_db' },
      store: app.store,
      bucket: app.backupBucket,
      key: backup.header.database.artifact?.key ?? '',
      onCreated: () => {
        reported = true;
      },
    });
    await expect(direct).rejects.toThrow('database "taken_db" already exists');
    expect(reported).toBe(false);
    const marker = await withPg('taken_db', (c) => c.query<{ v: string }>('SELECT v FROM marker'));
    expect(marker.rows).toEqual([{ v: 'mine' }]);
    expect(await storedHashes(app.store, app.cloneBucket, 'taken/')).toEqual(new Map());
    const [row] = await app.catalog.listRestores({ backupId: backup.header.backupId });
    expect(row).toMatchObject({ state: 'Failed' });
    await dropDatabase('taken_db');
  });

  it('a document that fails its check stops the restore: the new database and restored objects are removed, other databases untouched', async () => {
    const backup = await runBackup(app.ctx, backupRequest(app, {}, nextName()));
    const { bucket, prefix } = backup.header.documentLibrary;
    // one stored copy damaged: same size, other bytes
    let victim: ObjectInfo | undefined;
    for await (const o of listAll({ store: app.store, bucket, prefix: `${prefix}/` })) {
      if (o.size > 0) {
        victim = o;
        break;
      }
    }
    if (victim === undefined) throw new Error('the backup holds no non-empty document');
    await app.store.put(bucket, victim.key, Buffer.alloc(victim.size, 7), { size: victim.size });
    await dropDatabase('damaged_clone');
    const source = await dumpText(app.sourceDb);
    const request = restoreRequest(backup.header.backupId, {
      databaseName: 'damaged_clone',
      bucket: app.cloneBucket,
      prefix: 'damaged',
    });
    const ctx = { ...app.ctx, now: () => new Date('2025-03-01T00:00:02Z') };
    const err = await runRestore(ctx, request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(String(err)).toContain('restored bytes hash to');
    const exists = await withPg('postgres', (c) =>
      c.query("SELECT 1 FROM pg_database WHERE datname = 'damaged_clone'"),
    );
    expect(exists.rowCount).toBe(0);
    expect(await storedHashes(app.store, app.cloneBucket, 'damaged/')).toEqual(new Map());
    expect(await dumpText(app.sourceDb)).toBe(source);
    const [row] = await app.catalog.listRestores({ backupId: backup.header.backupId });
    expect(row).toMatchObject({ state: 'Failed' });
  });
  it('a damaged database dump is refused against the manifest once downloaded (through the scratch directory before indexes and constraints are built, streamed after pg_restore); the new database is dropped', async () => {
    const first = await runBackup(app.ctx, backupRequest(app, {}, nextName()));
    const dumpOf = (b: typeof first): { bucket: string; key: string } => {
      const artifact = b.header.database.artifact;
      if (artifact === undefined) throw new Error('the backup has no dump');
      return artifact;
    };
    // another backup's dump, a valid one of other data, put in place of the first's
    await withPg(app.sourceDb, (c) => c.query('CREATE TABLE lc2_damage_marker (id int)'));
    const second = await runBackup(app.ctx, backupRequest(app, {}, nextName()));
    await withPg(app.sourceDb, (c) => c.query('DROP TABLE lc2_damage_marker'));
    const replacement = await readAll(await app.store.get(dumpOf(second).bucket, dumpOf(second).key));
    await app.store.put(dumpOf(first).bucket, dumpOf(first).key, replacement, { size: replacement.length });
    const scratch = mkdtempSync(join(tmpdir(), 'lc2-damaged-'));
    try {
      for (const [databaseName, scratchDir] of [
        ['damaged_dump_scratch', scratch],
        ['damaged_dump_streamed', undefined],
      ] as const) {
        await dropDatabase(databaseName);
        const engine = { ...app.config.engine, scratchDir };
        const ctx = {
          ...app.ctx,
          config: { ...app.config, engine },
          now: () => new Date('2025-03-01T00:00:03Z'),
        };
        const request = restoreRequest(first.header.backupId, {
          databaseName,
          bucket: app.cloneBucket,
          prefix: databaseName,
        });
        const err = await runRestore(ctx, request).catch((e: unknown) => e);
        expect(err, databaseName).toBeInstanceOf(IntegrityError);
        expect(String(err)).toMatch(/database dump .* hash to [0-9a-f]{64}, the manifest says/);
        const exists = await withPg('postgres', (c) =>
          c.query('SELECT 1 FROM pg_database WHERE datname = $1', [databaseName]),
        );
        expect(exists.rowCount, databaseName).toBe(0);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
