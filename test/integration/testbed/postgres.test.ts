// PostgreSQL smoke test: the server and the client tools the engine will drive.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../env/exec.ts';
import { testbed, useDatabase, withPg } from '../../env/fixtures.ts';

const source = useDatabase('src');
const target = useDatabase('dst');
const work = await mkdtemp(join(tmpdir(), 'lc2-pg-smoke-'));
afterAll(() => rm(work, { recursive: true, force: true }));

describe('postgres', () => {
  it('dumps a table with pg_dump and restores it into another database with pg_restore', async () => {
    const { binDir, host, port, user, password } = testbed().postgres;
    await withPg(source.name, async (c) => {
      await c.query('CREATE TABLE documents (id int PRIMARY KEY, title text NOT NULL)');
      await c.query(`INSERT INTO documents SELECT g, 'title ' || g FROM generate_series(1, 1000) g`);
    });
    const env = { ...process.env, PGPASSWORD: password };
    const conn = ['-h', host, '-p', String(port), '-U', user];
    const dump = join(work, 'dump.pgc');
    await run(join(binDir, 'pg_dump'), [...conn, '-Fc', '-f', dump, source.name], { env });
    expect((await stat(dump)).size).toBeGreaterThan(0);
    await run(join(binDir, 'pg_restore'), [...conn, '--no-owner', '-d', target.name, dump], { env });
    const rows = await withPg(target.name, (c) =>
      c.query<{ n: string; s: string }>('SELECT count(*) AS n, sum(id)::text AS s FROM documents'),
    );
    expect(rows.rows[0]).toEqual({ n: '1000', s: '500500' });
    const version = await run(join(binDir, 'pg_dump'), ['--version']);
    expect(version).toMatch(/\(PostgreSQL\) 15\./);
  });
});
