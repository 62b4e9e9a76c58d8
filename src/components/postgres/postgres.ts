// The PostgreSQL component's `dump` path: pg_dump streamed through zstd into the object store
// (hashing the stored bytes on the way), and pg_restore from there into a NEW database.
// Passwords reach pg_dump/pg_restore only through PGPASSWORD in the child's environment.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createZstdCompress, createZstdDecompress, constants as zlib } from 'node:zlib';
import pg from 'pg';
import { NotFoundError, ValidationError } from '../../errors/index.ts';
import type { ObjectStore } from '../../providers/types.ts';

export interface PgConnection {
  /** For messages: the instance id the configuration calls this server. */
  instanceId: string;
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string | undefined;
}

export interface DumpResult {
  size: number;
  uncompressedSize: number;
  sha256: string;
}

function describe(conn: PgConnection): string {
  return `database instance "${conn.instanceId}" (${conn.user}@${conn.host}:${conn.port}/${conn.database})`;
}

/** Turns libpq's wording into an error that says what to do; never includes the password. */
export function connectionError(conn: PgConnection, detail: string): Error {
  const where = describe(conn);
  if (/password authentication failed|no password supplied/i.test(detail)) {
    return new ValidationError(
      `${where}: password authentication failed for user "${conn.user}"; check the password secret configured for this instance`,
    );
  }
  if (/ECONNREFUSED|could not connect|Connection refused|timeout|ENOTFOUND|EHOSTUNREACH/i.test(detail)) {
    return new ValidationError(
      `${where}: cannot connect (${detail.split('\n')[0]?.trim() ?? ''}); check that the server runs and host/port are right`,
    );
  }
  if (/database ".*" does not exist/i.test(detail)) {
    return new NotFoundError(`${where}: the database does not exist; check the instance's database name`);
  }
  return new Error(`${where}: ${detail.trim()}`);
}

export function clientFor(conn: PgConnection, database = conn.database): pg.Client {
  return new pg.Client({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database,
    connectionTimeoutMillis: 10_000,
  });
}

/** Connects once, so a wrong password or a stopped server fails fast with a clear message. */
export async function probeDatabase(
  conn: PgConnection,
): Promise<{ serverVersion: string; sizeBytes: number }> {
  const client = clientFor(conn);
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string; size: string }>(
      "SELECT current_setting('server_version') AS v, pg_database_size(current_database())::text AS size",
    );
    return { serverVersion: rows[0]?.v ?? '', sizeBytes: Number(rows[0]?.size ?? 0) };
  } catch (err) {
    throw connectionError(conn, (err as Error).message);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function pgEnv(conn: PgConnection): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: '10' };
  delete env.PGPASSWORD;
  if (conn.password !== undefined) env.PGPASSWORD = conn.password;
  return env;
}

function connArgs(conn: PgConnection): string[] {
  return ['--no-password', '-h', conn.host, '-p', String(conn.port), '-U', conn.user];
}

function tool(pgBin: string | undefined, name: string): string {
  return pgBin === undefined || pgBin === '' ? name : join(pgBin, name);
}

type Child = ChildProcessByStdio<Writable | null, Readable | null, Readable>;

/** Resolves when the child exits 0; rejects with the tail of its stderr otherwise. */
function exitOf(child: Child, what: string): Promise<void> {
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8192)));
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      reject(
        new Error(
          `${what}: cannot run (${err.message}); install the PostgreSQL client tools or set engine.pgBin`,
        ),
      );
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(stderr.trim() === '' ? `${what} exited with ${code}` : stderr.trim()));
    });
  });
}

function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}

export interface DumpOptions {
  conn: PgConnection;
  pgBin?: string | undefined;
  store: ObjectStore;
  bucket: string;
  key: string;
  onProgress?: (uncompressedBytes: number) => void;
  /** Aborting kills pg_dump; the partial upload is removed. */
  signal?: AbortSignal | undefined;
}

/** pg_dump -Fc (uncompressed; zstd does it faster) → zstd → the store. */
export async function dumpToStore(options: DumpOptions): Promise<DumpResult> {
  const { conn } = options;
  const child = spawn(
    tool(options.pgBin, 'pg_dump'),
    [...connArgs(conn), '-Fc', '-Z0', '-d', conn.database],
    {
      env: pgEnv(conn),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    },
  );
  const exited = exitOf(child, 'pg_dump');
  let uncompressedSize = 0;
  let size = 0;
  const hash = createHash('sha256');
  const body = new PassThrough();
  const upload = options.store.put(options.bucket, options.key, body, { contentType: 'application/zstd' });
  upload.catch(() => undefined);
  const piping = pipeline(
    child.stdout,
    counter((n) => {
      uncompressedSize += n;
      options.onProgress?.(uncompressedSize);
    }),
    createZstdCompress({ params: { [zlib.ZSTD_c_compressionLevel]: 3 } }),
    counter((n) => (size += n)),
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
    body,
  );
  try {
    await exited;
    await piping;
    await upload;
  } catch (err) {
    child.kill('SIGKILL');
    body.destroy(err as Error);
    await upload.catch(() => undefined);
    await options.store.delete(options.bucket, options.key).catch(() => undefined);
    throw connectionError(conn, `pg_dump failed: ${(err as Error).message}`);
  }
  return { size, uncompressedSize, sha256: hash.digest('hex') };
}

export interface RestoreOptions {
  /** Connection to the target instance; `database` is the NEW database to create. */
  conn: PgConnection;
  pgBin?: string | undefined;
  store: ObjectStore;
  bucket: string;
  key: string;
  /** With a scratch directory the dump is downloaded first so pg_restore can run -j jobs. */
  scratchDir?: string | undefined;
  jobs?: number | undefined;
}

/** Creates the target database (it must not exist) and pg_restores the stored dump into it. */
export async function restoreFromStore(options: RestoreOptions): Promise<void> {
  const { conn } = options;
  const admin = clientFor(conn, 'postgres');
  try {
    await admin.connect();
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [conn.database]);
    if (exists.rowCount !== 0) {
      throw new ValidationError(
        `spec.target.database.databaseName: database "${conn.database}" already exists on instance "${conn.instanceId}"; restores go into a new database: choose another name`,
      );
    }
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(conn.database)}`);
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw connectionError(conn, (err as Error).message);
  } finally {
    await admin.end().catch(() => undefined);
  }
  const stored = await options.store.get(options.bucket, options.key);
  const restoreArgs = [...connArgs(conn), '--no-owner', '--no-acl', '--exit-on-error', '-d', conn.database];
  if (options.scratchDir !== undefined) {
    const dir = await mkdtemp(join(options.scratchDir, 'lc2-restore-'));
    try {
      const file = join(dir, 'database.pgdump');
      try {
        await pipeline(stored, createZstdDecompress(), createWriteStream(file));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
          throw new Error(
            `engine.scratchDir ${options.scratchDir}: no space left for the database dump; free space there or point engine.scratchDir at a larger disk`,
            { cause: err },
          );
        }
        throw err;
      }
      const child = spawn(
        tool(options.pgBin, 'pg_restore'),
        [...restoreArgs, '-j', String(options.jobs ?? 2), file],
        {
          env: pgEnv(conn),
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      await exitOf(child, 'pg_restore').catch((err: unknown) => {
        throw new Error(`pg_restore into ${describe(conn)} failed: ${(err as Error).message}`);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return;
  }
  const child = spawn(tool(options.pgBin, 'pg_restore'), restoreArgs, {
    env: pgEnv(conn),
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const exited = exitOf(child, 'pg_restore');
  try {
    await Promise.all([pipeline(stored, createZstdDecompress(), child.stdin), exited]);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`pg_restore into ${describe(conn)} failed: ${(err as Error).message}`, { cause: err });
  }
}
