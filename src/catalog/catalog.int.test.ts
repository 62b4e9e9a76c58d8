import { createServer } from 'node:net';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { pgConfig, testbed, useDatabase, withPg } from '../../test/env/fixtures.ts';
import { isRetryable } from '../errors/index.ts';
import { CatalogSchemaError, CatalogUnavailableError, openCatalog, openPostgresCatalog } from './catalog.ts';
import { describeCatalog } from './catalogSuite.ts';
import { openPostgres } from './sql.ts';

const db = useDatabase('catalog');
const other = useDatabase('catalog-schema');

describeCatalog('PostgreSQL', () => openPostgresCatalog(pgConfig(db.name)));

function url(database: string, changes: { port?: number; password?: string } = {}): string {
  const { host, port, user, password } = testbed().postgres;
  const secret = encodeURIComponent(changes.password ?? password);
  return `postgresql://${encodeURIComponent(user)}:${secret}@${host}:${changes.port ?? port}/${database}`;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function failure(target: string): Promise<unknown> {
  return openCatalog(target).then(
    async (catalog) => {
      await catalog.close();
      return undefined;
    },
    (err: unknown) => err,
  );
}

describe('PostgreSQL catalog connection', () => {
  it('opens by URL and describes itself without the password', async () => {
    const catalog = await openCatalog(url(db.name));
    try {
      const { host, port, user, password } = testbed().postgres;
      expect(catalog.description).toBe(`PostgreSQL catalog ${user}@${host}:${port}/${db.name}`);
      expect(catalog.description).not.toContain(password);
      expect(catalog.schema.applied).toEqual([]);
    } finally {
      await catalog.close();
    }
  });

  it('reports a wrong password with where it tried, and without the password', async () => {
    const { host, port, user } = testbed().postgres;
    const wrong = 'Wr0ng-pa55word-x9';
    const err = await failure(url(db.name, { password: wrong }));
    expect(err).toBeInstanceOf(CatalogUnavailableError);
    expect((err as Error).message).toContain(`${user}@${host}:${port}/${db.name}`);
    expect((err as Error).message).toMatch(/password authentication failed/);
    expect(inspect(err, { depth: 10, showHidden: true })).not.toContain(wrong);
    expect(isRetryable(err)).toBe(false);
  });

  it('reports a refused port without the (right) password, as retryable', async () => {
    const { host, user, password } = testbed().postgres;
    const port = await closedPort();
    const err = await failure(url(db.name, { port }));
    expect(err).toBeInstanceOf(CatalogUnavailableError);
    expect((err as Error).message).toContain(`${user}@${host}:${port}/${db.name}`);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(inspect(err, { depth: 10, showHidden: true })).not.toContain(password);
    expect(isRetryable(err)).toBe(true);
  });

  it('reports a write that cannot get a connection as the catalog being unreachable, not as a failed write', async () => {
    // one connection, held by a transaction: the next statement waits for the pool and times out
    const sql = await openPostgres({ ...pgConfig(db.name), max: 1, connectionTimeoutMillis: 300 });
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const busy = sql.transaction(() => held);
    try {
      const err = await sql.query('SELECT 1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CatalogUnavailableError);
      expect((err as Error).message).toMatch(/timeout exceeded when trying to connect/);
      // an error the server answers with stays what it is
      release();
      await busy;
      await expect(sql.query('SELECT * FROM no_such_table')).rejects.not.toThrow(CatalogUnavailableError);
    } finally {
      release();
      await busy;
      await sql.close();
    }
  });

  it('refuses a schema newer than it knows', async () => {
    const first = await openPostgresCatalog(pgConfig(other.name));
    await first.close();
    await withPg(other.name, (c) =>
      c.query(`INSERT INTO schema_migrations (version, name) VALUES (42, 'future')`),
    );
    await expect(openPostgresCatalog(pgConfig(other.name))).rejects.toThrow(CatalogSchemaError);
    await expect(openCatalog(url(other.name))).rejects.toThrow(
      /schema version 42, newer than this lc2-backup knows/,
    );
  });
});
