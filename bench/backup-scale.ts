// How memory behaves as a document library grows: backs up N small objects (default 100,000)
// from one MinIO bucket to another and reports the backup's peak RSS, sampled every 50 ms,
// next to the RSS before the backup started. Memory should stay flat: listings are paged and
// the manifest entries are streamed.
//
//   node bench/backup-scale.ts [objects]        (on Node 24; `npm run lc2-backup` brings it)
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Testbed, testbedConfig } from '../test/env/testbed.ts';
import { openCatalog } from '../src/catalog/catalog.ts';
import { parseConfig } from '../src/config/config.ts';
import { runBackup } from '../src/engine/backup/backup.ts';
import { StoreRegistry } from '../src/engine/stores.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { buildResource } from '../api/v1alpha1/parse.ts';

const objects = Number(process.argv[2] ?? 100_000);
const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(0)} MiB`;
const bed = await Testbed.create();
try {
  const info = await bed.up(['postgres', 'minio']);
  if (!info.postgres || !info.s3) throw new Error('test bed did not start');
  const { minioStore, database } = testbedConfig({ postgres: info.postgres, s3: info.s3 });
  const config = parseConfig(
    {
      stores: { minio: minioStore },
      projects: {
        bench: {
          provider: 'local',
          databases: { db: database('postgres') },
          buckets: { 'bench-src': 'minio', 'bench-dst': 'minio' },
        },
      },
      engine: { concurrency: 32 },
    },
    'bench',
  );
  const stores = new StoreRegistry(config);
  const store = stores.get('minio');
  await store.createBucket('bench-src');
  await store.createBucket('bench-dst');
  process.stderr.write(`creating ${objects} objects of 1 KiB…\n`);
  const body = randomBytes(1024);
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < objects) {
        const i = next++;
        await store.put('bench-src', `document_library/${i % 100}/${i}/1.0`, body, { size: body.length });
      }
    }),
  );
  const client = new pg.Client({
    host: info.postgres.host,
    port: info.postgres.port,
    user: info.postgres.user,
    password: info.postgres.password,
    database: 'postgres',
  });
  await client.connect();
  await client.end();
  const catalog = await openCatalog('pglite://memory');
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const started = Date.now();
  const result = await runBackup(
    { config, catalog, stores, log: silentLogger },
    buildResource(
      'BackupRequest',
      {
        projectId: 'bench',
        environment: 'scale',
        database: { type: 'dump', instanceId: 'db' },
        documentLibrary: { sourceBucket: 'bench-src', destinationBucket: 'bench-dst' },
      },
      {},
      'bench request',
    ),
  );
  clearInterval(sampler);
  const seconds = (Date.now() - started) / 1000;
  await catalog.close();
  process.stdout.write(
    `backup of ${result.header.documentLibrary.objectCount} objects: ${seconds.toFixed(1)} s (${Math.round(result.header.documentLibrary.objectCount / seconds)} objects/s); ` +
      `RSS before ${mb(before)}, peak during the backup ${mb(peak)} (+${mb(peak - before)})\n`,
  );
} finally {
  await bed.stop();
}
