// What recording a backup's history costs (issue 5: the controller writes each backup's start and
// end to the catalog; in the controller bench's profile those writes to PostgreSQL were the largest
// item). On the test bed's PostgreSQL, N backups recorded as the engine does (start, then success),
// `--parallel` at once, then each read back once as archival does; reports the wall time, the
// statements sent (node-postgres' query calls, counted) and the CPU of the client and of
// PostgreSQL (its backends' CPU is counted when they exit: the catalog is closed before the
// reading).
//
//   node bench/catalog-cost.ts [--backups 1000] [--parallel 16]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openCatalog } from '../src/catalog/catalog.ts';
import { Testbed } from '../test/env/testbed.ts';
import { cpuMsOf, inParallel } from './controller-scale-shared.ts';

const { values } = parseArgs({
  options: { backups: { type: 'string', default: '1000' }, parallel: { type: 'string', default: '16' } },
});
const backups = Number(values.backups);
const parallel = Number(values.parallel);

// every statement node-postgres sends (the pool's clients are pg.Client)
let statements = 0;
const query = Reflect.get(pg.Client.prototype, 'query') as (...args: unknown[]) => unknown;
Reflect.set(pg.Client.prototype, 'query', function (this: pg.Client, ...args: unknown[]) {
  statements++;
  return query.apply(this, args);
});

const bed = await Testbed.create();
try {
  const info = await bed.up(['postgres']);
  if (!info.postgres) throw new Error('catalog-cost: the test bed did not start PostgreSQL');
  const catalog = await openCatalog(info.postgres.url);
  const postgres = bed.pids().postgres;
  const client = process.resourceUsage();
  const before = { t: performance.now(), pg: cpuMsOf(postgres, true), statements };
  const ids = Array.from(
    { length: backups },
    (_, i) => `cost-prd-backup-20261127-${String(i).padStart(6, '0')}`,
  );
  await inParallel(ids, parallel, async (backupId) => {
    await catalog.recordBackupStarted({
      backupId,
      projectId: 'cost',
      environment: 'prd',
      provider: 'local',
      dbType: 'dump',
      dbInstanceId: 'db',
      dlSourceBucket: 'src',
      dlDestinationBucket: 'dst',
      dlDestinationPrefix: `cost/prd/${backupId}`,
      crName: backupId,
      crNamespace: 'cost',
      startTime: new Date(),
    });
    await catalog.recordBackupSucceeded(backupId, { dlObjectCount: 5, dlTotalSizeBytes: 1000 });
    await catalog.getBackup(backupId);
  });
  const wallMs = performance.now() - before.t;
  const sent = statements - before.statements;
  await catalog.close();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const pgMs = cpuMsOf(postgres, true) - before.pg;
  const used = process.resourceUsage();
  const clientMs = (used.userCPUTime - client.userCPUTime + used.systemCPUTime - client.systemCPUTime) / 1000;
  process.stdout.write(
    `${backups} backups recorded (start, success, read back), ${parallel} at once: ${(wallMs / 1000).toFixed(2)} s, ` +
      `${(sent / backups).toFixed(1)} statements per backup, client CPU ${(clientMs / backups).toFixed(2)} ms and ` +
      `PostgreSQL CPU ${(pgMs / backups).toFixed(2)} ms per backup\n`,
  );
} finally {
  await bed.stop();
}
