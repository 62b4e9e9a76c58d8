// The scenarios of issue 10: each one runs our engine's code path and the peer(s) a user would
// otherwise run, on the same bed and data, at equal concurrency. A contender's `run` prepares
// what it needs outside the measurement (a fresh bucket, no database), measures only the work,
// and cleans up after it.
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { createZstdDecompress } from 'node:zlib';
import pg from 'pg';
import { backupDocuments, sha256Of } from '../src/components/documentLibrary/copy.ts';
import { dumpToStore, restoreFromStore, type PgConnection } from '../src/components/postgres/postgres.ts';
import type { LoadWhileDownloading } from '../src/components/postgres/splitRestore.ts';
import { EntriesWriter } from '../src/format/entries.ts';
import { ProgressTracker } from '../src/engine/progress.ts';
import type { ObjectStore } from '../src/providers/types.ts';
import { FileObjectStore } from '../src/providers/local/fileObjectStore.ts';
import { digestObject } from '../src/storage/digest.ts';
import { withRetry } from '../src/storage/retry.ts';
import {
  BY_HAND,
  CONCURRENCY,
  dropBucket,
  freshBucket,
  pgEnv,
  bash,
  rclone,
  restoreByHand,
  s5cmd,
  shellLine,
  shellWord,
  type Bench,
  type S3Info,
} from './context.ts';
import {
  databaseSql,
  detStream,
  fillBucket,
  large,
  medium,
  setBytes,
  setCount,
  small,
  writeFileOf,
  GiB,
  type ObjectSet,
} from './data.ts';
import { measureInProcess, measurePeer, runPeer, type Sample } from './measure.ts';
import { restoreApp } from './app.ts';

export interface Contender {
  tool: string;
  run: (rep: number) => Promise<Sample>;
}

export interface Medians {
  wallMs: number;
  cpuMs: number;
  serverCpuMs: number;
}

export interface Verdict {
  met: boolean;
  /** What was compared, with the numbers. */
  detail: string;
  /** A measured explanation beside the goal, not a goal itself (`met` is then meaningless). */
  info?: true;
}

export interface Scenario {
  id: string;
  title: string;
  goal: string;
  bytes: number;
  objects: number;
  contenders: (bench: Bench) => Promise<Contender[]>;
  judge: (m: Record<string, Medians>, scenario: Scenario) => Verdict[];
  /** Reference numbers measured once (e.g. warp's PUT ceiling). */
  reference?: (bench: Bench) => Promise<string>;
}

const OURS = 'lc2-backup';
/** The backup into the bucket done by hand: pg_dump | zstd -1 | s5cmd pipe (no SHA-256, unlike ours). */
const DUMP_BY_HAND = 'pg_dump|zstd|s5cmd pipe';
/** Ours with `loadWhileDownloading: always` (tables load while the dump still downloads). */
const SPLIT = 'lc2-backup, loading while downloading';

// --- shared data ----------------------------------------------------------------------------

/** Bucket `src` on the first MinIO: small/, medium/, large/ (P1a's set). */
function sourceBucket(bench: Bench): Promise<string> {
  return bench.once('source bucket', async () => {
    const store = bench.stores.get('minio');
    await store.createBucket('src');
    bench.log(
      `filling bucket src: ${setCount([small, medium, large])} objects, ${(setBytes([small, medium, large]) / GiB).toFixed(2)} GiB`,
    );
    await fillBucket(store, 'src', [small, medium, large]);
    return 'src';
  });
}

/** The database `benchdb` of about `dbMiB` MiB. */
export function benchDatabase(bench: Bench): Promise<PgConnection> {
  return bench.once('database', async () => {
    bench.log(`creating database benchdb (about ${bench.dbMiB} MiB)`);
    const admin = new pg.Client({ ...bench.pg, database: 'postgres' });
    await admin.connect();
    await admin.query('CREATE DATABASE benchdb');
    await admin.end();
    const client = new pg.Client({ ...bench.pg, database: 'benchdb' });
    await client.connect();
    for (const sql of databaseSql(bench.dbMiB)) await client.query(sql);
    const { rows } = await client.query<{ size: string }>(
      "SELECT pg_size_pretty(pg_database_size('benchdb')) AS size",
    );
    await client.end();
    bench.log(`database benchdb: ${rows[0]?.size ?? '?'}`);
    return { instanceId: 'bench-db', ...bench.pg, database: 'benchdb' };
  });
}

/** The database as our stored artifact (dumps/benchdb.pgdump.zst) and as a local -Fc file. */
function storedDump(bench: Bench): Promise<{ key: string; file: string }> {
  return bench.once('stored dump', async () => {
    const conn = await benchDatabase(bench);
    const store = bench.stores.get('minio');
    await store.createBucket('dumps');
    const key = 'benchdb.pgdump.zst';
    await dumpToStore({ conn, pgBin: bench.tools.pgBin, store, bucket: 'dumps', key });
    const file = join(bench.dir, 'benchdb.pgdump');
    await pipeline(await store.get('dumps', key), createZstdDecompress(), createWriteStream(file));
    return { key, file };
  });
}

async function dropDatabase(bench: Bench, name: string): Promise<void> {
  const admin = new pg.Client({ ...bench.pg, database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  await admin.end();
}

// --- P1a / P1b: document-library copies ---------------------------------------------------------

interface CopyPlan {
  from: { store: ObjectStore; bucket: string; prefix: string };
  to: { store: ObjectStore; bucket: string };
  excludePrefix?: string | undefined;
}

/** Our document-library step as the backup runs it: listing, copy, SHA-256, streamed entries. */
async function oursCopy(plan: CopyPlan): Promise<void> {
  const entries = new EntriesWriter(plan.to.store, plan.to.bucket, '_manifest.entries.jsonl.gz');
  const exclude = plan.excludePrefix;
  await backupDocuments({
    source: plan.from,
    destination: { ...plan.to, prefix: '' },
    excluded: (key) => exclude !== undefined && key.startsWith(exclude),
    concurrency: CONCURRENCY,
    progress: new ProgressTracker('documentLibrary', undefined),
    onEntry: (entry) => entries.write(entry),
  });
  await entries.close();
}

interface CopyScenarioOptions {
  prefix: string;
  /** Skipped by every contender (listed, not copied). */
  excludePrefix?: string;
  /** The destination is the second MinIO server (a streamed copy). */
  streamed: boolean;
}

function copyContenders(bench: Bench, options: CopyScenarioOptions): Promise<Contender[]> {
  const { tools } = bench;
  const source = bench.stores.get('minio');
  const target = async (): Promise<{ s3: S3Info; store: ObjectStore }> =>
    options.streamed
      ? { s3: await bench.s3b(), store: bench.stores.get('minio2') }
      : { s3: bench.s3, store: source };
  const withBucket =
    (tool: string, work: (dst: string, s3: S3Info) => Promise<Sample>) =>
    async (rep: number): Promise<Sample> => {
      const to = await target();
      const bucket = await freshBucket(to.store, `dst-${tool.replace(/[^a-z0-9]/g, '')}-${rep}`);
      try {
        return await work(bucket, to.s3);
      } finally {
        await dropBucket(bench, to.s3, bucket);
      }
    };
  const servers = bench.serverPids;
  const s5Exclude = options.excludePrefix === undefined ? [] : ['--exclude', `${options.excludePrefix}*`];
  const rcExclude = options.excludePrefix === undefined ? [] : ['--exclude', `/${options.excludePrefix}**`];
  const contenders: Contender[] = [
    {
      tool: OURS,
      run: withBucket(OURS, async (dst) => {
        const to = await target();
        return measureInProcess(servers(), () =>
          oursCopy({
            from: { store: source, bucket: 'src', prefix: options.prefix },
            to: { store: to.store, bucket: dst },
            excludePrefix: options.excludePrefix,
          }),
        );
      }),
    },
    {
      tool: 'rclone',
      run: withBucket('rclone', async (dst, s3) =>
        measurePeer(
          servers(),
          rclone(tools, { a: bench.s3, b: s3 }, [
            'copy',
            `a:src/${options.prefix}`,
            `b:${dst}`,
            ...rcExclude,
          ]),
        ),
      ),
    },
  ];
  if (!options.streamed) {
    contenders.push({
      tool: 's5cmd',
      run: withBucket('s5cmd', async (dst) =>
        measurePeer(
          servers(),
          s5cmd(tools, bench.s3, ['cp', ...s5Exclude, `s3://src/${options.prefix}*`, `s3://${dst}/`]),
        ),
      ),
    });
  }
  return Promise.resolve(contenders);
}

function ratio(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined || b === 0 ? Number.NaN : a / b;
}

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

function judgeServerSideCopy(m: Record<string, Medians>, s: Scenario): Verdict[] {
  const ours = m[OURS];
  const peers = ['s5cmd', 'rclone'].map((t) => m[t]).filter((x): x is Medians => x !== undefined);
  const fastest = Math.min(...peers.map((p) => p.wallMs));
  const wall = ratio(fastest, ours?.wallMs);
  const cpu = ratio(ours?.cpuMs, m.s5cmd?.cpuMs);
  const perObject = (x: Medians | undefined): string => fmt((x?.cpuMs ?? Number.NaN) / s.objects, 3);
  return [
    {
      met: wall >= 1.0,
      detail: `speed vs the faster peer: ${fmt(wall)}× (goal ≥ 1.0×): ours ${fmt((ours?.wallMs ?? 0) / 1000)} s, fastest peer ${fmt(fastest / 1000)} s`,
    },
    {
      met: cpu <= 1.5,
      detail: `client CPU per object vs s5cmd: ${fmt(cpu)}× (goal ≤ 1.5×): ours ${perObject(ours)} ms, s5cmd ${perObject(m.s5cmd)} ms`,
    },
  ];
}

function judgeStreamed(m: Record<string, Medians>, s: Scenario): Verdict[] {
  const ours = m[OURS];
  const peer = m.rclone;
  const speed = ratio(peer?.wallMs, ours?.wallMs);
  const gb = s.bytes / 1e9;
  const perGb = (x: Medians | undefined): number => (x?.cpuMs ?? Number.NaN) / 1000 / gb;
  const mbs = (x: Medians | undefined): number => s.bytes / 1e6 / ((x?.wallMs ?? Number.NaN) / 1000);
  return [
    {
      met: speed >= 1.0,
      detail: `MB/s vs rclone: ${fmt(speed)}× (goal ≥ 1.0×): ours ${fmt(mbs(ours), 0)} MB/s, rclone ${fmt(mbs(peer), 0)} MB/s`,
    },
    {
      met: perGb(ours) <= perGb(peer),
      detail: `client CPU per GB: ours ${fmt(perGb(ours))} s, rclone ${fmt(perGb(peer))} s (goal ≤ rclone's)`,
    },
  ];
}

function judgeWall(peer: string, limit: number) {
  return (m: Record<string, Medians>): Verdict[] => {
    const r = ratio(m[OURS]?.wallMs, m[peer]?.wallMs);
    return [
      {
        met: r <= limit,
        detail: `wall vs ${peer}: ${fmt(r)}× (goal ≤ ${limit.toFixed(2)}×): ours ${fmt((m[OURS]?.wallMs ?? 0) / 1000)} s, ${peer} ${fmt((m[peer]?.wallMs ?? 0) / 1000)} s`,
      },
    ];
  };
}

/**
 * The goal against `peer`, which works with a local file, and beside it how the same job done by
 * hand with the usual tools and the bucket (`byHand`: for a restore, fetch the stored dump and
 * decompress it, then the peer; for a backup, the peer's pipeline into `s5cmd pipe`) compares with
 * the peer and with ours: what the bucket and the compressed dump cost on this machine.
 */
function judgeWallByHand(peer: string, limit: number, byHand: string, extra: string[] = []) {
  const goal = judgeWall(peer, limit);
  return (m: Record<string, Medians>): Verdict[] => {
    const secs = (tool: string): string => fmt((m[tool]?.wallMs ?? 0) / 1000);
    const vsPeer = (tool: string): string => `${fmt(ratio(m[tool]?.wallMs, m[peer]?.wallMs))}× ${peer}`;
    return [
      ...goal(m),
      {
        met: true,
        info: true,
        detail: `the same job by hand (${byHand}): ${secs(byHand)} s, ${vsPeer(byHand)}; ours is ${fmt(ratio(m[OURS]?.wallMs, m[byHand]?.wallMs))}× it`,
      },
      ...extra.map((tool) => ({
        met: true,
        info: true as const,
        detail: `${tool}: ${secs(tool)} s, ${vsPeer(tool)}`,
      })),
    ];
  };
}

/** warp's PUT throughput against the second MinIO: what the destination can take at all. */
async function warpCeiling(bench: Bench): Promise<string> {
  const s3 = await bench.s3b();
  const out = await runPeer({
    command: bench.tools.warp,
    args: [
      'put',
      '--host',
      s3.endpoint.replace(/^https?:\/\//, ''),
      '--access-key',
      s3.accessKeyId,
      '--secret-key',
      s3.secretAccessKey,
      '--obj.size',
      '1MiB',
      '--concurrent',
      String(CONCURRENCY),
      '--duration',
      '15s',
      '--bucket',
      'warp-bench',
      '--noclear',
    ],
    env: { PATH: process.env.PATH ?? '', HOME: bench.dir },
    cwd: bench.dir,
  });
  await dropBucket(bench, s3, 'warp-bench');
  const avg = /Average:\s*([\d.]+)\s*MiB\/s/.exec(out);
  const mbs = avg === null ? Number.NaN : (Number(avg[1]) * 1024 * 1024) / 1e6;
  return `warp PUT ceiling of the destination MinIO (1 MiB objects, ${CONCURRENCY} concurrent, 15 s): ${fmt(mbs, 0)} MB/s`;
}

const set = (sets: ObjectSet[]): { bytes: number; objects: number } => ({
  bytes: setBytes(sets),
  objects: setCount(sets),
});

export const scenarios: Scenario[] = [
  {
    id: 'P5',
    title: 'SHA-256 of 1 GiB streamed from a file',
    goal: 'throughput ≥ 0.9× openssl dgst -sha256',
    bytes: GiB,
    objects: 1,
    contenders: async (bench) => {
      // the same bytes as a plain file (for openssl) and as an object of a file:// store (ours:
      // the call verify --deep makes, digestObject on the store as the engine opens it: withRetry
      // around FileObjectStore, whose digest reads into two reused buffers)
      const { file, store } = await bench.once('hash file', async () => {
        const path = join(bench.dir, 'hash-1GiB.bin');
        await writeFileOf(path, 'P5', GiB);
        const files = new FileObjectStore(join(bench.dir, 'files'));
        await files.createBucket('p5');
        await files.put('p5', 'hash-1GiB.bin', detStream('P5', GiB), { size: GiB });
        return { file: path, store: withRetry(files) };
      });
      // both read from the page cache: one untimed pass first, which also checks ours is right
      const ours = await digestObject(store, 'p5', 'hash-1GiB.bin');
      const plain = await sha256Of(createReadStream(file));
      if (ours.sha256 !== plain || ours.size !== GiB) {
        throw new Error(`P5: digest ${ours.sha256} (${ours.size} B) differs from the file's ${plain}`);
      }
      return [
        {
          tool: OURS,
          run: () =>
            measureInProcess(bench.serverPids(), async () => {
              await digestObject(store, 'p5', 'hash-1GiB.bin');
            }),
        },
        {
          tool: 'openssl',
          run: () =>
            measurePeer(bench.serverPids(), {
              command: bench.tools.openssl,
              args: ['dgst', '-sha256', file],
              env: { PATH: process.env.PATH ?? '' },
            }),
        },
      ];
    },
    judge: (m) => {
      const r = ratio(m.openssl?.wallMs, m[OURS]?.wallMs);
      const mbs = (x: Medians | undefined): number => GiB / 1e6 / ((x?.wallMs ?? Number.NaN) / 1000);
      return [
        {
          met: r >= 0.9,
          detail: `throughput vs openssl: ${fmt(r)}× (goal ≥ 0.9×): ours ${fmt(mbs(m[OURS]), 0)} MB/s, openssl ${fmt(mbs(m.openssl), 0)} MB/s`,
        },
      ];
    },
  },
  {
    id: 'P1a',
    title: 'server-side copy bucket→bucket, one MinIO: 10,000 × 4 KiB + 1,000 × 1 MiB + 4 × 256 MiB',
    goal: 'wall ≥ 1.0× the faster peer; client CPU per object ≤ 1.5× s5cmd',
    ...set([small, medium, large]),
    contenders: async (bench) => {
      await sourceBucket(bench);
      return copyContenders(bench, { prefix: '', streamed: false });
    },
    judge: judgeServerSideCopy,
  },
  {
    id: 'P1a-small',
    title: 'server-side copy bucket→bucket, one MinIO: the 10,000 × 4 KiB part alone',
    goal: 'wall ≥ 1.0× the faster peer; client CPU per object ≤ 1.5× s5cmd',
    ...set([small]),
    contenders: async (bench) => {
      await sourceBucket(bench);
      return copyContenders(bench, { prefix: small.prefix, streamed: false });
    },
    judge: judgeServerSideCopy,
  },
  {
    id: 'P1b',
    title: 'streamed copy between two MinIO servers, SHA-256 on the way: 1,000 × 1 MiB + 4 × 256 MiB',
    goal: 'MB/s ≥ 1.0× rclone; client CPU per GB ≤ rclone',
    ...set([medium, large]),
    contenders: async (bench) => {
      await sourceBucket(bench);
      await bench.s3b();
      return copyContenders(bench, { prefix: '', excludePrefix: small.prefix, streamed: true });
    },
    judge: judgeStreamed,
    reference: warpCeiling,
  },
  {
    id: 'P3',
    title: 'database backup: pg_dump -Fc -Z0 | zstd → MinIO',
    goal: 'wall ≤ 1.10× pg_dump -Fc -Z0 | zstd -1 > file',
    bytes: 0,
    objects: 1,
    contenders: async (bench) => {
      const conn = await benchDatabase(bench);
      const store = bench.stores.get('minio');
      await store.createBucket('dumps');
      const file = join(bench.dir, 'p3.pgdump.zst');
      const pgDump = join(bench.tools.pgBin, 'pg_dump');
      return [
        {
          tool: OURS,
          run: async (rep) => {
            const key = `p3-${rep}.pgdump.zst`;
            const sample = await measureInProcess(bench.serverPids(), async () => {
              await dumpToStore({ conn, pgBin: bench.tools.pgBin, store, bucket: 'dumps', key });
            });
            await store.delete('dumps', key);
            return sample;
          },
        },
        {
          tool: DUMP_BY_HAND,
          run: async (rep) => {
            const key = `p3-hand-${rep}.pgdump.zst`;
            const pipe = s5cmd(bench.tools, bench.s3, ['pipe', `s3://dumps/${key}`]);
            const line = `${shellWord(pgDump)} -Fc -Z0 -d benchdb | ${shellWord(bench.tools.zstd)} -1 -q -c | ${shellLine(pipe)}`;
            const sample = await measurePeer(
              bench.serverPids(),
              bash({ line, env: { ...pgEnv(bench.pg), ...pipe.env } }),
            );
            await store.delete('dumps', key);
            return sample;
          },
        },
        {
          tool: 'pg_dump|zstd',
          run: async () => {
            const sample = await measurePeer(bench.serverPids(), {
              command: '/bin/sh',
              args: [
                '-c',
                `set -e; "${pgDump}" -Fc -Z0 -d benchdb | "${bench.tools.zstd}" -1 -q -f -o "${file}"`,
              ],
              env: pgEnv(bench.pg),
            });
            await rm(file, { force: true });
            return sample;
          },
        },
      ];
    },
    judge: judgeWallByHand('pg_dump|zstd', 1.1, DUMP_BY_HAND),
  },
  {
    id: 'P4',
    title: 'database restore from MinIO into a new database',
    goal: 'wall ≤ 1.10× pg_restore -j2 from a local file',
    bytes: 0,
    objects: 1,
    contenders: async (bench) => {
      const dump = await storedDump(bench);
      const base = await benchDatabase(bench);
      const pgRestore = join(bench.tools.pgBin, 'pg_restore');
      const createdb = join(bench.tools.pgBin, 'createdb');
      const ours = (tool: string, loadWhileDownloading: LoadWhileDownloading): Contender => ({
        tool,
        run: async (rep) => {
          const database = `p4_${loadWhileDownloading}_${rep}`;
          const sample = await measureInProcess(bench.serverPids(), () =>
            restoreFromStore({
              conn: { ...base, database },
              pgBin: bench.tools.pgBin,
              store: bench.stores.get('minio'),
              bucket: 'dumps',
              key: dump.key,
              scratchDir: bench.dir,
              jobs: 2,
              loadWhileDownloading,
            }),
          );
          await dropDatabase(bench, database);
          return sample;
        },
      });
      return [
        ours(OURS, 'auto'),
        ours(SPLIT, 'always'),
        {
          tool: BY_HAND,
          run: async (rep) => {
            const database = `p4_hand_${rep}`;
            const sample = await measurePeer(
              bench.serverPids(),
              bash(
                restoreByHand(
                  bench,
                  { bucket: 'dumps', key: dump.key },
                  { database, file: join(bench.dir, 'p4-hand.pgdump') },
                ),
              ),
            );
            await dropDatabase(bench, database);
            return sample;
          },
        },
        {
          tool: 'pg_restore -j2',
          run: async (rep) => {
            const database = `p4_peer_${rep}`;
            const sample = await measurePeer(bench.serverPids(), {
              command: '/bin/sh',
              args: [
                '-c',
                `set -e; "${createdb}" ${database}; "${pgRestore}" -j2 --no-owner --no-acl --exit-on-error -d ${database} "${dump.file}"`,
              ],
              env: pgEnv(bench.pg),
            });
            await dropDatabase(bench, database);
            return sample;
          },
        },
      ];
    },
    judge: judgeWallByHand('pg_restore -j2', 1.1, BY_HAND, [SPLIT]),
  },
  {
    id: 'P7',
    title: 'whole-application restore: database + documents (1,000 × 1 MiB + 4 × 256 MiB)',
    goal: 'wall ≤ 1.15× pg_restore -j2 + s5cmd cp run together',
    ...set([medium, large]),
    contenders: async (bench) => {
      await sourceBucket(bench);
      const dump = await storedDump(bench);
      return restoreApp(bench, { dumpFile: dump.file, dropDatabase: (name) => dropDatabase(bench, name) });
    },
    judge: judgeWallByHand('pg_restore+s5cmd', 1.15, BY_HAND),
  },
];
