// What every scenario shares: the test bed (PostgreSQL, MinIO, a second MinIO for streamed
// copies), the peers, our engine's stores and configuration, data prepared once per run, and
// the commands that drive the peers against the bed.
import { join } from 'node:path';
import type { TestbedInfo } from '../test/env/testbed.ts';
import { Testbed } from '../test/env/testbed.ts';
import type { Config } from '../src/config/config.ts';
import type { StoreRegistry } from '../src/engine/stores.ts';
import type { ObjectStore } from '../src/providers/types.ts';
import { cleanEnv, runPeer, type PeerCommand } from './measure.ts';
import type { Tools } from './tools.ts';

/** Objects copied at once, by us (engine.concurrency) and by every peer. */
export const CONCURRENCY = 16;

export type S3Info = TestbedInfo['s3'];

export interface Bench {
  bed: Testbed;
  pg: TestbedInfo['postgres'];
  s3: S3Info;
  /** The second MinIO server, started on first use. */
  s3b: () => Promise<S3Info>;
  tools: Tools;
  config: Config;
  stores: StoreRegistry;
  /** Scratch space inside the bed (removed with it). */
  dir: string;
  reps: number;
  dbMiB: number;
  /** The servers whose CPU time is reported beside the client's. */
  serverPids: () => number[];
  /** Runs `make` once per bench run, however many scenarios need it. */
  once: <T>(name: string, make: () => Promise<T>) => Promise<T>;
  log: (line: string) => void;
}

export function s5cmd(tools: Tools, s3: S3Info, args: string[]): PeerCommand {
  return {
    command: tools.s5cmd,
    args: ['--endpoint-url', s3.endpoint, '--numworkers', String(CONCURRENCY), ...args],
    env: cleanEnv({
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
    }),
  };
}

/** The restore from the stored, compressed dump done by hand: s5cmd cat | zstd -d, then pg_restore -j2. */
export const BY_HAND = 's5cmd|zstd -d, pg_restore -j2';

/** Quotes a word for /bin/sh. */
export function shellWord(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A command line for /bin/bash and the environment it needs. */
export interface ShellJob {
  line: string;
  env: Record<string, string>;
}

/** A peer command as one quoted shell line. */
export function shellLine(command: PeerCommand): string {
  return [command.command, ...command.args].map(shellWord).join(' ');
}

/** Runs a job under bash, failing on the first failed command or pipeline stage. */
export function bash(job: ShellJob): PeerCommand {
  return { command: '/bin/bash', args: ['-c', `set -eo pipefail; ${job.line}`], env: job.env };
}

/**
 * A restore of a stored dump done by hand with the usual tools: `s5cmd cat` the compressed dump
 * into `zstd -d`, which writes `file`; then `createdb` and `pg_restore -j2` from it; then the
 * file is removed, as our restore removes its scratch file. The same work as ours, done by the
 * peers.
 */
export function restoreByHand(
  bench: Bench,
  dump: { bucket: string; key: string },
  target: { database: string; file: string },
): ShellJob {
  const cat = s5cmd(bench.tools, bench.s3, ['cat', `s3://${dump.bucket}/${dump.key}`]);
  const bin = (name: string): string => shellWord(join(bench.tools.pgBin, name));
  const file = shellWord(target.file);
  const line = [
    `${shellLine(cat)} | ${shellWord(bench.tools.zstd)} -d -q -f -o ${file}`,
    `${bin('createdb')} ${target.database}`,
    `${bin('pg_restore')} -j2 --no-owner --no-acl --exit-on-error -d ${target.database} ${file}`,
    `rm -f ${file}`,
  ].join(' && ');
  return { line, env: { ...pgEnv(bench.pg), ...cat.env } };
}

/** rclone remotes from the environment only (no configuration file): `a:` and, given, `b:`. */
function rcloneEnv(remotes: Record<string, S3Info>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, s3] of Object.entries(remotes)) {
    const p = `RCLONE_CONFIG_${name.toUpperCase()}_`;
    Object.assign(env, {
      [`${p}TYPE`]: 's3',
      [`${p}PROVIDER`]: 'Minio',
      [`${p}ENDPOINT`]: s3.endpoint,
      [`${p}ACCESS_KEY_ID`]: s3.accessKeyId,
      [`${p}SECRET_ACCESS_KEY`]: s3.secretAccessKey,
      [`${p}REGION`]: s3.region,
    });
  }
  return env;
}

export function rclone(tools: Tools, remotes: Record<string, S3Info>, args: string[]): PeerCommand {
  return {
    command: tools.rclone,
    args: [...args, '--transfers', String(CONCURRENCY), '--checkers', String(CONCURRENCY), '-q'],
    env: cleanEnv({ ...rcloneEnv(remotes), RCLONE_CONFIG: '/dev/null' }),
  };
}

/** A fresh, empty bucket for one run. */
export async function freshBucket(store: ObjectStore, name: string): Promise<string> {
  await store.createBucket(name);
  return name;
}

/** Removes a bucket and everything in it (s5cmd: batch deletes), outside any measurement. */
export async function dropBucket(bench: Bench, s3: S3Info, bucket: string): Promise<void> {
  await runPeer(s5cmd(bench.tools, s3, ['rm', `s3://${bucket}/*`])).catch(() => undefined);
  await runPeer(s5cmd(bench.tools, s3, ['rb', `s3://${bucket}`])).catch(() => undefined);
}

/** psql settings for PostgreSQL's own client programs, with a clean environment. */
export function pgEnv(pg: TestbedInfo['postgres']): Record<string, string> {
  return cleanEnv({
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
    PGDATABASE: 'postgres',
  });
}
