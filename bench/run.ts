// `npm run bench [-- <scenario>…] [--reps N] [--quick] [--db-mib N]`: our engine against the
// tools a user would otherwise run (s5cmd, rclone, warp, openssl, pg_dump/pg_restore), on the
// same test bed and the same deterministic data, alternating, several times; prints medians
// and ratios and writes JSON + Markdown + an SVG chart under bench/results/. Scenarios: issue
// 10 (P1a, P1b, P3, P4, P5, P7); a scenario argument matches ids by prefix (P1a runs P1a and
// P1a-small).
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Testbed, testbedConfig, versions } from '../test/env/testbed.ts';
import { parseConfig } from '../src/config/config.ts';
import { StoreRegistry } from '../src/engine/stores.ts';
import { appProject, restoreBuckets } from './app.ts';
import type { Bench, S3Info } from './context.ts';
import { CONCURRENCY } from './context.ts';
import { median, type Sample } from './measure.ts';
import { machine, textTable, writeReport, type RunReport, type ScenarioResult } from './report.ts';
import { scenarios, type Medians, type Scenario } from './scenarios.ts';
import { locateTools } from './tools.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    reps: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'db-mib': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    `usage: npm run bench -- [scenario…] [--reps N (default 2)] [--quick (1 run each)] [--db-mib N (default 1024)]\nscenarios: ${scenarios.map((s) => s.id).join(', ')}\n`,
  );
  process.exit(0);
}
// 2 runs per tool keep the whole suite under 15 min on 2 cores (13 min measured)
const reps = values.quick ? 1 : Number(values.reps ?? 2);
const dbMiB = Number(values['db-mib'] ?? 1024);
const chosen = scenarios.filter(
  (s) => positionals.length === 0 || positionals.some((p) => s.id.toLowerCase().startsWith(p.toLowerCase())),
);
if (chosen.length === 0 || !(reps >= 1) || !(dbMiB >= 1)) {
  process.stderr.write(
    `bench: nothing to run: scenarios are ${scenarios.map((s) => s.id).join(', ')}; --reps and --db-mib take positive numbers\n`,
  );
  process.exit(2);
}

const log = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};

function summarise(samples: Record<string, Sample[]>): Record<string, Medians> {
  return Object.fromEntries(
    Object.entries(samples).map(([tool, list]) => [
      tool,
      {
        wallMs: median(list.map((x) => x.wallMs)),
        cpuMs: median(list.map((x) => x.cpuMs)),
        serverCpuMs: median(list.map((x) => x.serverCpuMs)),
      },
    ]),
  );
}

async function runScenario(bench: Bench, scenario: Scenario): Promise<ScenarioResult> {
  log(`${scenario.id}: ${scenario.title}`);
  const contenders = await scenario.contenders(bench);
  const samples: Record<string, Sample[]> = Object.fromEntries(contenders.map((c) => [c.tool, []]));
  for (let rep = 1; rep <= bench.reps; rep++) {
    // alternate: each run starts with a different tool, so none always gets the warm (or cold) slot
    const order = contenders.map((_, i) => contenders[(i + rep - 1) % contenders.length]);
    for (const c of order) {
      if (c === undefined) continue;
      const sample = await c.run(rep);
      samples[c.tool]?.push(sample);
      log(
        `${scenario.id} run ${rep}/${bench.reps} ${c.tool}: ${(sample.wallMs / 1000).toFixed(2)} s wall, ${(sample.cpuMs / 1000).toFixed(2)} s client CPU, ${(sample.serverCpuMs / 1000).toFixed(2)} s server CPU`,
      );
    }
  }
  const medians = summarise(samples);
  const reference = scenario.reference === undefined ? undefined : await scenario.reference(bench);
  return {
    id: scenario.id,
    title: scenario.title,
    goal: scenario.goal,
    bytes: scenario.bytes,
    objects: scenario.objects,
    samples,
    medians,
    verdicts: scenario.judge(medians, scenario),
    reference,
  };
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const tools = await locateTools();
  const bed = await Testbed.create();
  try {
    const info = await bed.up(['postgres', 'minio']);
    if (!info.postgres || !info.s3) throw new Error('bench: the test bed did not start PostgreSQL and MinIO');
    const { minioStore, database } = testbedConfig({ postgres: info.postgres, s3: info.s3 });
    let second: Promise<S3Info> | undefined;
    const s3b = (): Promise<S3Info> => (second ??= bed.upMinio('minio2'));
    // the second server has its own keys; its store reads them from the environment like the first
    const s3bInfo = chosen.some((s) => s.id === 'P1b') ? await s3b() : undefined;
    if (s3bInfo) {
      process.env.LC2_BENCH_S3B_KEY = s3bInfo.accessKeyId;
      process.env.LC2_BENCH_S3B_SECRET = s3bInfo.secretAccessKey;
    }
    const config = parseConfig(
      {
        stores: {
          minio: minioStore,
          ...(s3bInfo === undefined
            ? {}
            : {
                minio2: {
                  type: 's3',
                  endpoint: s3bInfo.endpoint,
                  accessKeyId: { env: 'LC2_BENCH_S3B_KEY' },
                  secretAccessKey: { env: 'LC2_BENCH_S3B_SECRET' },
                },
              }),
        },
        projects: {
          [appProject]: {
            provider: 'local',
            databases: { 'bench-db': database('benchdb') },
            buckets: Object.fromEntries(['src', 'backups', ...restoreBuckets(reps)].map((b) => [b, 'minio'])),
          },
        },
        engine: {
          concurrency: CONCURRENCY,
          generatedFilePatterns: ['small/**'],
          scratchDir: bed.dir,
          restoreJobs: 2,
          pgBin: tools.pgBin,
        },
      },
      'bench configuration',
    );
    const made = new Map<string, Promise<unknown>>();
    const bench: Bench = {
      bed,
      pg: info.postgres,
      s3: info.s3,
      s3b,
      tools,
      config,
      stores: new StoreRegistry(config),
      dir: bed.dir,
      reps,
      dbMiB,
      serverPids: () => {
        const pids = bed.pids();
        return ['minio', 'minio2', 'postgres'].flatMap((n) => (pids[n] === undefined ? [] : [pids[n]]));
      },
      once: <T>(name: string, make: () => Promise<T>): Promise<T> => {
        let p = made.get(name) as Promise<T> | undefined;
        if (p === undefined) {
          p = make();
          made.set(name, p);
        }
        return p;
      },
      log,
    };
    const results: ScenarioResult[] = [];
    for (const scenario of chosen) results.push(await runScenario(bench, scenario));
    const report: RunReport = {
      startedAt,
      reps,
      dbMiB,
      machine: machine(),
      versions: {
        minio: versions.minio,
        s5cmd: versions.s5cmd,
        warp: versions.warp,
        postgres: versions.postgres,
      },
      scenarios: results,
    };
    process.stdout.write(`\n${textTable(report)}\n\n`);
    const files = await writeReport(join(fileURLToPath(new URL('.', import.meta.url)), 'results'), report);
    process.stdout.write(`written: ${files.join(', ')}\n`);
  } finally {
    await bed.stop();
  }
}

await main();
