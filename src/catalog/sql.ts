// The catalog runs the same SQL on two back ends: PGlite (embedded PostgreSQL in WASM, one
// connection) and a PostgreSQL server through a pg Pool. This file hides their differences
// behind one small interface; nothing above it imports pg or PGlite.
import { mkdir } from 'node:fs/promises';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { isRetryable } from '../errors/index.ts';
import { lockDirectory } from './dirLock.ts';
import { CatalogUnavailableError } from './errors.ts';

export type SqlRow = Record<string, unknown>;

export interface SqlExecutor {
  /** One statement, parameters as $1, $2, … (never interpolated into the text). */
  query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]>;
  /** A script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlDatabase extends SqlExecutor {
  /** For messages: which database this is. Never holds a password. */
  readonly description: string;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

function pgliteExecutor(db: Pick<PGlite, 'query' | 'exec'>): SqlExecutor {
  return {
    async query(sql, params = []) {
      return (await db.query<SqlRow>(sql, [...params])).rows;
    },
    async exec(sql) {
      await db.exec(sql);
    },
  };
}

/**
 * Wraps a PGlite instance. `release` runs on close; a borrowed instance (tests share one
 * in-memory database between catalogs) passes none and stays open.
 */
export function pgliteDatabase(db: PGlite, description: string, release?: () => Promise<void>): SqlDatabase {
  let closed = false;
  return {
    description,
    ...pgliteExecutor(db),
    transaction: (fn) => db.transaction((tx) => fn(pgliteExecutor(tx))),
    async close() {
      if (closed || release === undefined) return;
      closed = true;
      await release();
    },
  };
}

/** Opens an embedded catalog: in memory when `dataDir` is undefined, else in that directory (created when missing). */
export async function openPglite(dataDir: string | undefined): Promise<SqlDatabase> {
  // loaded only when used: a PostgreSQL catalog (the controller's) never pays for the WASM module
  const { PGlite } = await import('@electric-sql/pglite');
  if (dataDir === undefined) {
    const db = await PGlite.create();
    return pgliteDatabase(db, 'embedded catalog (in memory)', () => db.close());
  }
  await mkdir(dataDir, { recursive: true });
  const unlock = await lockDirectory(dataDir);
  let db: PGlite;
  try {
    db = await PGlite.create({ dataDir });
  } catch (err) {
    await unlock();
    throw new CatalogUnavailableError(
      `cannot open the embedded catalog in ${dataDir}: ${errorText(err)}. ` +
        `The directory must be writable and hold a catalog of this PGlite version (or be empty).`,
      errorCode(err),
    );
  }
  return pgliteDatabase(db, `embedded catalog in ${dataDir}`, async () => {
    try {
      await db.close();
    } finally {
      await unlock();
    }
  });
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // Node reports a refused connection to a name with several addresses as an AggregateError
  // with an empty message
  if (err.message !== '') return err.message;
  if (err instanceof AggregateError) {
    const inner = err.errors.map(errorText).filter((m) => m !== '');
    if (inner.length > 0) return [...new Set(inner)].join('; ');
  }
  return errorCode(err) ?? err.name;
}

// `new URL` puts its whole input (password included) on the error it throws: never let it out.
function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function fromUrl(config: pg.PoolConfig): pg.PoolConfig {
  const url = config.connectionString === undefined ? undefined : parseUrl(config.connectionString);
  if (url === undefined) return {};
  return {
    host: url.hostname !== '' ? url.hostname : undefined,
    port: url.port !== '' ? Number(url.port) : undefined,
    user: url.username !== '' ? safeDecode(url.username) : undefined,
    database: url.pathname.length > 1 ? safeDecode(url.pathname.slice(1)) : undefined,
  };
}

/** Where a pg config points, for messages: user@host:port/database, never the password. */
export function describePgTarget(config: pg.PoolConfig): string {
  const url = fromUrl(config);
  const { PGHOST, PGPORT, PGUSER, PGDATABASE } = process.env;
  // as pg does: what the URL says wins over the other settings
  const host = url.host ?? config.host ?? PGHOST ?? 'localhost';
  const port = url.port ?? config.port ?? PGPORT ?? 5432;
  const user = url.user ?? config.user ?? PGUSER ?? '(default user)';
  const database = url.database ?? config.database ?? PGDATABASE ?? user;
  return `${user}@${host}:${port}/${database}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function secretsOf(config: pg.PoolConfig): string[] {
  const secrets: string[] = [];
  if (typeof config.password === 'string') secrets.push(config.password);
  const url = config.connectionString === undefined ? undefined : parseUrl(config.connectionString);
  if (url !== undefined) secrets.push(url.password);
  if (process.env.PGPASSWORD !== undefined) secrets.push(process.env.PGPASSWORD);
  // a URL carries the password percent-encoded; a message may quote either form
  return secrets.filter((s) => s !== '').flatMap((s) => [s, safeDecode(s), encodeURIComponent(s)]);
}

/** Removes every form of the configured password from a message. */
export function redact(text: string, config: pg.PoolConfig): string {
  // longest first, so a secret that contains another is removed whole
  const secrets = [...new Set(secretsOf(config))].sort((a, b) => b.length - a.length);
  return secrets.reduce((t, s) => t.split(s).join('***'), text);
}

function unavailable(config: pg.PoolConfig, err: unknown): CatalogUnavailableError {
  const cause = redact(errorText(err), config);
  return new CatalogUnavailableError(
    `cannot connect to the catalog database ${describePgTarget(config)}: ${cause}. ` +
      `Check that the server runs and accepts connections there, and that the user and password are right.`,
    errorCode(err),
  );
}

/** The pool could not get or keep a connection (not an error the server answered with). */
function connectionFailed(err: unknown): boolean {
  if (err instanceof pg.DatabaseError) return false;
  if (isRetryable(err)) return true;
  const message = err instanceof Error ? err.message : '';
  return /timeout exceeded when trying to connect|Connection terminated|connection.*(closed|ended)/i.test(
    message,
  );
}

/** `fail` maps what a statement throws (the pool's: a connection it cannot get). */
function pgExecutor(client: pg.Pool | pg.PoolClient, fail = (err: unknown): unknown => err): SqlExecutor {
  return {
    async query(sql, params = []) {
      try {
        return (await client.query<SqlRow>(sql, [...params])).rows;
      } catch (err) {
        throw fail(err);
      }
    },
    async exec(sql) {
      try {
        // without parameters pg uses the simple query protocol, which accepts several statements
        await client.query(sql);
      } catch (err) {
        throw fail(err);
      }
    },
  };
}

/**
 * Opens a pool and proves it can connect, so a wrong host, port or password is reported here,
 * once, with where it tried (and no password).
 */
export async function openPostgres(config: pg.PoolConfig): Promise<SqlDatabase> {
  const pool = new pg.Pool({ connectionTimeoutMillis: 10_000, ...config });
  // An idle client whose connection drops emits 'error' on the pool; without a listener Node
  // ends the process. The pool discards that client and the next query connects afresh, so
  // there is nothing more to do.
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw unavailable(config, err);
  }
  let closed = false;
  return {
    description: `PostgreSQL catalog ${describePgTarget(config)}`,
    // a statement outside a transaction takes a connection from the pool too: one it cannot get
    // is the catalog being unreachable, as when a transaction cannot start
    ...pgExecutor(pool, (err) => (connectionFailed(err) ? unavailable(config, err) : err)),
    async transaction(fn) {
      const client = await pool.connect().catch((err: unknown) => {
        throw unavailable(config, err);
      });
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await fn(pgExecutor(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      } finally {
        // a client whose ROLLBACK failed is in an unknown state: destroy it, do not reuse it
        client.release(broken);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
