// Restores through the scratch directory against the test bed's PostgreSQL: the archive split
// while it downloads (splitRestore.ts), the plain path for archives it does not split, and what
// a damaged or cut-off dump does.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testbed, uniqueName, withPg } from '../../../test/env/fixtures.ts';
import { MemoryObjectStore } from '../../providers/memory/objectStore.ts';
import type { ObjectStore } from '../../providers/types.ts';
import { readAll } from '../../engine/manifests.ts';
import { dumpToStore, restoreFromStore, type PgConnection, type RestoreOptions } from './postgres.ts';

const bucket = 'dumps';
let store: MemoryObjectStore;
let scratch: string;
const created: string[] = [];

function conn(database: string): PgConnection {
  const { host, port, user, password } = testbed().postgres;
  return { instanceId: 'split-test', host, port, user, password, database };
}

function dbName(prefix: string): string {
  const name = uniqueName(prefix).replace(/-/g, '_');
  created.push(name);
  return name;
}

async function createDb(name: string, sql: string): Promise<void> {
  await withPg('postgres', (c) => c.query(`CREATE DATABASE "${name}"`));
  await withPg(name, (c) => c.query(sql));
}

/** Every table's rows (ordered, as text), sequences' values, large objects, comments, indexes. */
async function contents(database: string): Promise<Record<string, unknown>> {
  return withPg(database, async (c) => {
    const out: Record<string, unknown> = {};
    const tables = await c.query<{ t: string }>(
      "SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    );
    for (const { t } of tables.rows) {
      const r = await c.query<{ n: string; h: string | null }>(
        `SELECT count(*)::text AS n, md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS h FROM ${t} AS x`,
      );
      out[t] = r.rows[0];
    }
    const meta = await c.query(
      `SELECT (SELECT string_agg(format('%s=%s', sequencename, last_value), ',' ORDER BY sequencename) FROM pg_sequences) AS sequences,
              (SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public') AS indexes,
              (SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE connamespace = 'public'::regnamespace) AS constraints,
              (SELECT string_agg(md5(lo_get(oid)), ',' ORDER BY oid) FROM pg_largeobject_metadata) AS large_objects,
              obj_description('public.a_first'::regclass) AS comment,
              (SELECT count(*) FROM public.mv)::text AS mv`,
    );
    out.meta = meta.rows[0];
    return out;
  });
}

const schema = `
  CREATE TABLE a_first (id bigint PRIMARY KEY, body text, blob bytea, doc jsonb);
  CREATE TABLE "Mixed Case" (id serial PRIMARY KEY, a_id bigint REFERENCES a_first (id), note text);
  CREATE TABLE empty_one (x int);
  CREATE TABLE m_small (k text PRIMARY KEY, v int);
  CREATE TABLE z_last (id bigint, payload text);
  CREATE INDEX z_last_id ON z_last (id);
  COMMENT ON TABLE a_first IS 'the first table';
  CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM "Mixed Case";
  INSERT INTO a_first SELECT i, repeat(md5(i::text), 8) || E'\\ttab\\nnewline\\\\backslash', decode(md5(i::text), 'hex'),
    jsonb_build_object('i', i, 'q', 'quote "x"') FROM generate_series(1, 40000) AS i;
  INSERT INTO "Mixed Case" (a_id, note) SELECT i, 'note ' || i FROM generate_series(1, 40000) AS i;
  INSERT INTO m_small SELECT 'k' || i, i FROM generate_series(1, 50) AS i;
  INSERT INTO z_last SELECT i, md5(random()::text) || md5(random()::text) FROM generate_series(1, 150000) AS i;
`;

/** Restores `key` into the new database `target` through the scratch directory. */
function restore(
  target: string,
  key: string,
  options: Pick<RestoreOptions, 'jobs' | 'loadWhileDownloading'> & { from?: ObjectStore },
): Promise<void> {
  return restoreFromStore({
    conn: conn(target),
    pgBin: testbed().postgres.binDir,
    store: options.from ?? store,
    bucket,
    key,
    scratchDir: scratch,
    jobs: options.jobs,
    loadWhileDownloading: options.loadWhileDownloading,
  });
}

/** Hands out the stored dump in 64 KiB pieces; `beforeLast` runs before the last piece goes. */
function slowStore(inner: ObjectStore, beforeLast: () => Promise<void>): ObjectStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'get') return Reflect.get(target, prop, receiver) as unknown;
      return async (b: string, key: string): Promise<Readable> => {
        const bytes = await readAll(await target.get(b, key));
        return Readable.from(
          (async function* pieces() {
            for (let at = 0; at < bytes.length; at += 65_536) {
              if (at + 65_536 >= bytes.length) await beforeLast();
              yield bytes.subarray(at, at + 65_536);
            }
          })(),
        );
      };
    },
  });
}

describe('restore through the scratch directory', () => {
  const source = { name: '' };
  const withLargeObject = { name: '' };
  let sourceContents: Record<string, unknown>;

  beforeAll(async () => {
    store = new MemoryObjectStore();
    await store.createBucket(bucket);
    scratch = await mkdtemp(join(tmpdir(), 'lc2-split-'));
    source.name = dbName('split_src');
    await createDb(source.name, schema);
    await withPg(source.name, (c) => c.query('REFRESH MATERIALIZED VIEW mv'));
    sourceContents = await contents(source.name);
    await dumpToStore({
      conn: conn(source.name),
      pgBin: testbed().postgres.binDir,
      store,
      bucket,
      key: 'split.zst',
    });
    withLargeObject.name = dbName('split_lo');
    await createDb(
      withLargeObject.name,
      `${schema}; SELECT lo_from_bytea(0, convert_to(repeat('large object ', 5000), 'UTF8'))`,
    );
    await dumpToStore({
      conn: conn(withLargeObject.name),
      pgBin: testbed().postgres.binDir,
      store,
      bucket,
      key: 'lo.zst',
    });
  }, 120_000);

  afterAll(async () => {
    for (const name of created) {
      await withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    }
    await rm(scratch, { recursive: true, force: true });
  });

  it.each([1, 2, 3])(
    'loads table data while the dump still downloads, with %i loaders',
    async (jobs) => {
      const target = dbName(`split_${jobs}`);
      let loadedEarly = false;
      // before the last piece: the first table's data is in the new database already
      const beforeLast = async (): Promise<void> => {
        for (let i = 0; i < 200 && !loadedEarly; i++) {
          await sleep(50);
          loadedEarly = await withPg(target, async (c) => {
            const r = await c.query<{ n: string }>(
              "SELECT (SELECT count(*) FROM pg_tables WHERE tablename = 'a_first')::text AS n",
            );
            if (r.rows[0]?.n !== '1') return false;
            const rows = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM a_first');
            return rows.rows[0]?.n === '40000';
          }).catch(() => false);
        }
      };
      await restore(target, 'split.zst', {
        from: slowStore(store, beforeLast),
        jobs,
        loadWhileDownloading: 'always',
      });
      expect(loadedEarly).toBe(true);
      expect(await contents(target)).toEqual(sourceContents);
      expect(await readdir(scratch)).toEqual([]);
    },
    120_000,
  );

  it('with loadWhileDownloading never, loads nothing before the dump is whole', async () => {
    const target = dbName('split_never');
    let loadedEarly: boolean | undefined;
    const beforeLast = async (): Promise<void> => {
      await sleep(1000);
      loadedEarly = await withPg(target, (c) =>
        c.query("SELECT 1 FROM pg_tables WHERE tablename = 'a_first'").then((r) => r.rowCount === 1),
      );
    };
    await restore(target, 'split.zst', { from: slowStore(store, beforeLast), loadWhileDownloading: 'never' });
    expect(loadedEarly).toBe(false);
    expect(await contents(target)).toEqual(sourceContents);
  }, 120_000);

  it('restores an archive with large objects the plain way, from the whole file', async () => {
    const target = dbName('split_lo_r');
    await restore(target, 'lo.zst', { loadWhileDownloading: 'always' });
    const restored = await contents(target);
    expect(restored).toEqual(await contents(withLargeObject.name));
    expect((restored.meta as { large_objects: string | null }).large_objects).toMatch(/^[0-9a-f]{32}$/);
  }, 120_000);

  it('a dump cut short fails the restore with what is wrong, and leaves no scratch files', async () => {
    const whole = await readAll(await store.get(bucket, 'split.zst'));
    await store.put(bucket, 'cut.zst', whole.subarray(0, Math.floor(whole.length * 0.6)));
    const target = dbName('split_cut');
    const err = await restore(target, 'cut.zst', { loadWhileDownloading: 'always' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).toMatch(/truncated|unexpected end|premature end|incomplete|inside a data block/i);
    expect(await readdir(scratch)).toEqual([]);
  }, 120_000);
});
