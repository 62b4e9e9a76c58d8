// The PostgreSQL component's `dump` path: pg_dump streamed through zstd into the object store
// (the store hashes the stored bytes on the way), and pg_restore from there into a NEW database.
// Passwords reach pg_dump/pg_restore only through PGPASSWORD in the child's environment.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { PassThrough, Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createZstdDecompress } from 'node:zlib';
import pg from 'pg';
import { IntegrityError, NotFoundError, ValidationError } from '../../errors/index.ts';
import type { ObjectInfo, ObjectStore } from '../../providers/types.ts';
import { digestObject } from '../../storage/digest.ts';
import { compressZstd, socketPair, type CompressOptions, type SocketSource } from './compress.ts';
import {
  loadsWhileDownloading,
  splitRestore,
  type Loader,
  type LoadWhileDownloading,
  type SplitRestoreResult,
} from './splitRestore.ts';

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
function exitOf(
  child: Child,
  what: string,
  hint = 'install the PostgreSQL client tools or set engine.pgBin',
): Promise<void> {
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8192)));
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      // killed through the abort signal given to spawn: the caller stopped it
      if (err.name === 'AbortError') {
        reject(
          new Error(`${what} was stopped: ${(err.cause as Error | undefined)?.message ?? err.message}`, {
            cause: err,
          }),
        );
        return;
      }
      reject(new Error(`${what}: cannot run (${err.message}); ${hint}`));
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(stderr.trim() === '' ? `${what} exited with ${code}` : stderr.trim()));
    });
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

/**
 * zstd level 1: on dumps it compresses 2.3× faster than level 3 for about the same size (the
 * bench database: 56 MB at level 1, 62 MB at level 3, from 486 MB; docs/performance.md, P3).
 */
const zstdLevel = 1;
/**
 * zstd's output buffer, and the batch it compresses at once: every buffer is one hop through the
 * thread pool, and zlib's 16 KiB default made decompressing a dump 2× slower (0.75 s vs 0.4 s CPU
 * for 486 MB).
 */
const zstdChunk = 1024 * 1024;
/**
 * Reused input buffers of `zstdChunk` bytes: one filling from pg_dump's pipe while the others wait
 * in zstd, so pg_dump keeps writing while zstd works. Reused instead of a `Buffer.concat` per batch:
 * about 10 % less CPU and far fewer full garbage collections (docs/performance.md, P3).
 */
const zstdBuffers = 4;
/** The socket's read buffer: a read from a Unix socket returns up to about 200 KiB. */
const socketReadSize = 256 * 1024;

/** What pg_dump's output is read from: a socket pair where one can be made, else a pipe. */
async function dumpOutput(): Promise<{ reader?: SocketSource; writer?: Socket }> {
  try {
    return await socketPair(socketReadSize);
  } catch {
    // e.g. a TMPDIR too long for a socket path: the pipe works too, with more allocations
    return {};
  }
}

/** pg_dump -Fc (uncompressed; zstd does it faster) → zstd → the store. */
export async function dumpToStore(options: DumpOptions): Promise<DumpResult> {
  const { conn } = options;
  const { reader, writer } = await dumpOutput();
  let child: Child;
  try {
    // stdout: the socket's other end, or a pipe (child.stdout); stderr: a pipe (exitOf)
    child = spawn(tool(options.pgBin, 'pg_dump'), [...connArgs(conn), '-Fc', '-Z0', '-d', conn.database], {
      env: pgEnv(conn),
      stdio: ['ignore', writer ?? 'pipe', 'pipe'],
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    }) as Child;
  } catch (err) {
    reader?.socket.destroy();
    throw err;
  } finally {
    // the child has its own copy: the reader sees the end when pg_dump's closes
    writer?.destroy();
  }
  const exited = exitOf(child, 'pg_dump');
  let uncompressedSize = 0;
  const body = new PassThrough();
  // the store hashes and counts the bytes it stores (ObjectStore.put): not done here a second time
  const upload = options.store.put(options.bucket, options.key, body, { contentType: 'application/zstd' });
  upload.catch(() => undefined);
  const compressing: CompressOptions = {
    level: zstdLevel,
    chunk: zstdChunk,
    buffers: zstdBuffers,
    onBytes: (n) => {
      uncompressedSize += n;
      options.onProgress?.(uncompressedSize);
    },
  };
  const piping =
    reader === undefined
      ? compressZstd(child.stdout as Readable, body, compressing)
      : reader.compress(body, compressing);
  // awaited below; a failure elsewhere first must not leave it unhandled
  piping.catch(() => undefined);
  let stored: ObjectInfo;
  try {
    await exited;
    await piping;
    stored = await upload;
  } catch (err) {
    child.kill('SIGKILL');
    body.destroy(err as Error);
    await upload.catch(() => undefined);
    await options.store.delete(options.bucket, options.key).catch(() => undefined);
    throw connectionError(conn, `pg_dump failed: ${(err as Error).message}`);
  }
  // a store that did not report the SHA-256 of what it stored: read it back
  const sha256 = stored.sha256 ?? (await digestObject(options.store, options.bucket, options.key)).sha256;
  return { size: stored.size, uncompressedSize, sha256 };
}

export interface RestoreOptions {
  /** Connection to the target instance; `database` is the NEW database to create. */
  conn: PgConnection;
  pgBin?: string | undefined;
  store: ObjectStore;
  bucket: string;
  key: string;
  /**
   * With a scratch directory the dump is decompressed into a file there and loaded by `jobs`
   * pg_restore processes: as it grows (splitRestore.ts) or once it is whole, as
   * `loadWhileDownloading` says; without one it is streamed into one pg_restore.
   */
  scratchDir?: string | undefined;
  jobs?: number | undefined;
  /** Default `auto` (loadsWhileDownloading in splitRestore.ts). */
  loadWhileDownloading?: LoadWhileDownloading | undefined;
  /**
   * Called once this call has created the database (and only then): what a failed restore may
   * drop. A database that existed before is refused, never reported here.
   */
  onCreated?: (() => void) | undefined;
  /** Aborting stops the download and kills pg_restore (the created database stays: the caller drops it). */
  signal?: AbortSignal | undefined;
  /**
   * The stored dump's SHA-256 (hex) and size as the manifest recorded them: the bytes downloaded
   * are hashed on their way into zstd and a mismatch fails the restore with an IntegrityError once
   * the download ends — through the scratch directory before indexes and constraints are built.
   */
  expected?: { sha256: string; size: number } | undefined;
}

/**
 * Hashes and counts what flows through; `check()` after the end throws an IntegrityError when it
 * is not what the manifest recorded.
 */
function checkedDump(options: RestoreOptions): { tap: Transform; check: () => void } {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  const check = (): void => {
    const { expected } = options;
    if (expected === undefined) return;
    const sha256 = hash.digest('hex');
    if (sha256 === expected.sha256 && size === expected.size) return;
    throw new IntegrityError(
      `database dump ${options.bucket}/${options.key}: the stored bytes (${size}) hash to ${sha256}, the manifest says ${expected.sha256} (${expected.size} bytes); the dump is damaged: run verify --deep on the backup and restore another one`,
    );
  };
  return { tap, check };
}

function existsError(conn: PgConnection): ValidationError {
  return new ValidationError(
    `spec.target.database.databaseName: database "${conn.database}" already exists on instance "${conn.instanceId}"; restores go into a new database: choose another name`,
  );
}

/** Runs `work` on a connection to the instance's `postgres` database; errors say what to do. */
async function withAdmin(conn: PgConnection, work: (admin: pg.Client) => Promise<void>): Promise<void> {
  const admin = clientFor(conn, 'postgres');
  try {
    await admin.connect();
    await work(admin);
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    // duplicate_database: created by someone else between the check and CREATE DATABASE
    if ((err as { code?: string }).code === '42P04') throw existsError(conn);
    throw connectionError(conn, (err as Error).message);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

async function refuseExisting(admin: pg.Client, conn: PgConnection): Promise<void> {
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [conn.database]);
  if (exists.rowCount !== 0) throw existsError(conn);
}

/** Throws ValidationError when the target database exists: restores never write into one. */
export function requireNewDatabase(conn: PgConnection): Promise<void> {
  return withAdmin(conn, (admin) => refuseExisting(admin, conn));
}

/** Creates the target database; one that exists (or appears meanwhile) is refused, never adopted. */
function createDatabase(conn: PgConnection): Promise<void> {
  return withAdmin(conn, async (admin) => {
    await refuseExisting(admin, conn);
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(conn.database)}`);
  });
}

/**
 * The zstd command-line tool, when there is one: `LC2_ZSTD` (a path; empty: none), else `zstd` on
 * PATH. It decompresses a dump into a file in about half the time and CPU of Node's zstd (a 974 MB
 * dump from MinIO: 0.79–0.90 s and 1.15–1.33 CPU-s vs 1.49–1.68 s and 2.1–2.4 CPU-s;
 * docs/performance.md, P4), and that time is on the restore's critical path: `pg_restore -j`
 * cannot start before the file is whole.
 */
let zstdTool: Promise<string | undefined> | undefined;
function findZstd(): Promise<string | undefined> {
  zstdTool ??= (async () => {
    const configured = process.env.LC2_ZSTD;
    if (configured !== undefined) return configured === '' ? undefined : configured;
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir === '') continue;
      const candidate = join(dir, 'zstd');
      try {
        await access(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
    return undefined;
  })();
  return zstdTool;
}

/** For tests: look the zstd tool up again (after changing LC2_ZSTD). */
export function forgetZstdTool(): void {
  zstdTool = undefined;
}

/** Decompresses the stored dump into `file`: with the zstd tool where there is one, else Node's zstd. */
export async function decompressToFile(
  stored: Readable,
  file: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const zstd = await findZstd();
  if (zstd === undefined) {
    await pipeline(stored, createZstdDecompress({ chunkSize: zstdChunk }), createWriteStream(file), {
      signal,
    });
    return;
  }
  const child = spawn(zstd, ['-d', '-q', '-f', '-o', file], {
    stdio: ['pipe', 'ignore', 'pipe'],
    ...(signal === undefined ? {} : { signal, killSignal: 'SIGKILL' as const }),
  });
  const exited = exitOf(child, 'zstd', 'install zstd, or set LC2_ZSTD to its path (empty: none)').catch(
    (err: unknown) => {
      throw new Error(`zstd -d: ${(err as Error).message}`, { cause: err });
    },
  );
  const [piped, exit] = await Promise.allSettled([pipeline(stored, child.stdin, { signal }), exited]);
  if (piped.status === 'rejected') {
    child.kill('SIGKILL');
    stored.destroy();
    // zstd's own complaint says more than the broken pipe it left behind
    if ((piped.reason as NodeJS.ErrnoException).code === 'EPIPE' && exit.status === 'rejected')
      throw exit.reason;
    throw piped.reason;
  }
  if (exit.status === 'rejected') throw exit.reason;
}

function scratchError(err: unknown, scratchDir: string): unknown {
  if (
    !/ENOSPC|No space left/i.test(`${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`)
  ) {
    return err;
  }
  return new Error(
    `engine.scratchDir ${scratchDir}: no space left for the database dump; free space there or point engine.scratchDir at a larger disk`,
    { cause: err },
  );
}

/** Starts pg_restore with `args` against the new database; `stdin`: a pipe to feed it the archive. */
function spawnPgRestore(
  options: RestoreOptions,
  args: string[],
  stdin: 'pipe' | 'ignore',
): { child: Child; exited: Promise<void> } {
  const { conn, signal } = options;
  const child = spawn(tool(options.pgBin, 'pg_restore'), [...restoreArgs(conn), ...args], {
    env: pgEnv(conn),
    stdio: [stdin, 'ignore', 'pipe'],
    ...(signal === undefined ? {} : { signal, killSignal: 'SIGKILL' as const }),
  }) as Child; // stderr is a pipe; stdin one only when asked
  const exited = exitOf(child, 'pg_restore').catch((err: unknown) => {
    throw new Error(`pg_restore into ${describe(conn)} failed: ${(err as Error).message}`, { cause: err });
  });
  exited.catch(() => undefined);
  return { child, exited };
}

/** Runs pg_restore with `args` (the archive a file among them) against the new database. */
function runPgRestore(options: RestoreOptions, args: string[]): Promise<void> {
  return spawnPgRestore(options, args, 'ignore').exited;
}

/** Starts a pg_restore that reads the archive from its stdin. */
function startLoader(options: RestoreOptions, args: string[]): { child: Loader; exited: Promise<void> } {
  const { child, exited } = spawnPgRestore(options, args, 'pipe');
  return { child: child as Loader, exited };
}

/**
 * Decompresses the dump into the scratch directory. Loading while downloading, schema and table
 * data are restored from the file while it grows (splitRestore.ts) and the rest with pg_restore -j
 * once it is whole and checked; otherwise, and for an archive that cannot be split, pg_restore -j
 * restores it from the whole file.
 */
async function restoreFromScratch(
  options: RestoreOptions,
  stored: Readable,
  scratchDir: string,
): Promise<void> {
  const dir = await mkdtemp(join(scratchDir, 'lc2-restore-'));
  const stop = new AbortController();
  const signal = options.signal === undefined ? stop.signal : AbortSignal.any([options.signal, stop.signal]);
  try {
    const file = join(dir, 'database.pgdump');
    const dump = checkedDump(options);
    stored.on('error', (err) => dump.tap.destroy(err));
    const written = decompressToFile(stored.pipe(dump.tap), file, signal).catch((err: unknown) => {
      stored.destroy();
      throw scratchError(err, scratchDir);
    });
    written.catch(() => undefined);
    const jobs = options.jobs ?? 2;
    let split: SplitRestoreResult | undefined;
    const overlap = loadsWhileDownloading(options.loadWhileDownloading ?? 'auto', {
      host: options.conn.host,
      jobs,
    });
    try {
      if (overlap)
        split = await splitRestore({
          file,
          dir,
          written,
          jobs,
          pgRestore: (args) => runPgRestore(options, args),
          startLoader: (args) => startLoader(options, args),
          signal: options.signal,
        });
      await written;
    } catch (err) {
      // stops the download too (when the split failed first: a failed download is `err` itself)
      stop.abort(err);
      await written.catch(() => undefined);
      // the split writes into the scratch directory too (the TOC copy): a full disk says so (only
      // this process's own write errors: a pg_restore message may be about the server's disk)
      throw (err as NodeJS.ErrnoException).code === 'ENOSPC' ? scratchError(err, scratchDir) : err;
    }
    // the whole dump is here: a damaged one fails before pg_restore starts (whole file) or
    // before indexes and constraints are built (split; the caller drops the new database)
    dump.check();
    await runPgRestore(options, [...(split?.restArgs ?? [file]), '-j', String(jobs)]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Streams the dump through zstd into one pg_restore (no -j: it needs a seekable file). */
async function restoreStreamed(options: RestoreOptions, stored: Readable): Promise<void> {
  const { conn, signal } = options;
  const child = spawn(tool(options.pgBin, 'pg_restore'), restoreArgs(conn), {
    env: pgEnv(conn),
    stdio: ['pipe', 'ignore', 'pipe'],
    ...(signal === undefined ? {} : { signal, killSignal: 'SIGKILL' as const }),
  });
  const exited = exitOf(child, 'pg_restore');
  const dump = checkedDump(options);
  try {
    await Promise.all([
      pipeline(stored, dump.tap, createZstdDecompress({ chunkSize: zstdChunk }), child.stdin, { signal }),
      exited,
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`pg_restore into ${describe(conn)} failed: ${(err as Error).message}`, { cause: err });
  }
  // streamed, the check comes after pg_restore: a damaged dump fails the restore, and the caller
  // drops the database it created
  dump.check();
}

function restoreArgs(conn: PgConnection): string[] {
  return [...connArgs(conn), '--no-owner', '--no-acl', '--exit-on-error', '-d', conn.database];
}

/** Creates the target database (it must not exist) and pg_restores the stored dump into it. */
export async function restoreFromStore(options: RestoreOptions): Promise<void> {
  await createDatabase(options.conn);
  options.onCreated?.();
  options.signal?.throwIfAborted();
  const stored = await options.store.get(options.bucket, options.key);
  if (options.scratchDir !== undefined) await restoreFromScratch(options, stored, options.scratchDir);
  else await restoreStreamed(options, stored);
}
