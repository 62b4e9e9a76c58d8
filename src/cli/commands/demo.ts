// `npm run demo`: the whole product on embedded defaults. Starts PostgreSQL and MinIO (the test
// bed's), creates a sample Liferay-like application (tables whose rows reference document keys;
// a bucket of originals plus generated renditions), backs it up with excludeGeneratedFiles,
// verifies it deeply, restores it into a new database and a new bucket, proves the restore
// equal (rows, and the SHA-256 of every backed-up object; the excluded renditions listed as
// such), prints a summary, and removes everything it made.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

import { buildResource } from '../../../api/v1alpha1/parse.ts';
import { Testbed, testbedConfig } from '../../../test/env/testbed.ts';
import { openCatalog } from '../../catalog/catalog.ts';
import { keyMatcher } from '../../components/documentLibrary/patterns.ts';
import { listAll, sha256Of } from '../../components/documentLibrary/copy.ts';
import { parseConfig } from '../../config/config.ts';
import { runBackup } from '../../engine/backup/backup.ts';
import { humanBytes, type EngineContext } from '../../engine/context.ts';
import { runRestore } from '../../engine/restore/restore.ts';
import { StoreRegistry } from '../../engine/stores.ts';
import { verifyBackup } from '../../engine/verify/verify.ts';
import { lineLogger } from '../../observability/logger.ts';
import type { ObjectStore } from '../../providers/types.ts';
import { exitCodes } from '../errors.ts';
import { progressPrinter } from '../output.ts';
import { humanDuration } from '../../engine/units.ts';
import { toolVersion, type GlobalOptions } from '../session.ts';

const SOURCE_BUCKET = 'liferay-retail-prd-dl';
const BACKUP_BUCKET = 'liferay-backups';
const CLONE_BUCKET = 'liferay-retail-clone-dl';

// Deterministic bytes, so every demo run moves the same data.
function content(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(String(seed)).digest();
  for (let i = 0; i < size; i += block.length) {
    block.copy(out, i);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

interface SampleApp {
  originals: number;
  renditions: number;
  bytes: number;
}

async function createSampleApp(client: pg.Client, store: ObjectStore): Promise<SampleApp> {
  await client.query(`
    CREATE TABLE dlfolder (folderid bigint PRIMARY KEY, name text NOT NULL);
    CREATE TABLE dlfileentry (fileentryid bigint PRIMARY KEY, folderid bigint REFERENCES dlfolder, title text NOT NULL,
      mimetype text NOT NULL, size_ bigint NOT NULL, dlkey text NOT NULL UNIQUE, createdate timestamptz NOT NULL);
    CREATE TABLE assetentry (entryid bigint PRIMARY KEY, classpk bigint REFERENCES dlfileentry, viewcount int NOT NULL);
    CREATE INDEX ON dlfileentry (folderid);`);
  await client.query(`INSERT INTO dlfolder SELECT g, 'Folder ' || g FROM generate_series(1, 20) g`);
  const app: SampleApp = { originals: 0, renditions: 0, bytes: 0 };
  const puts: Promise<unknown>[] = [];
  for (let id = 1; id <= 400; id++) {
    const size = id % 50 === 0 ? 2 * 1024 * 1024 : 1024 + ((id * 7919) % 200_000);
    const key = `document_library/20097/${(id % 20) + 1}/${id}/1.0`;
    await client.query('INSERT INTO dlfileentry VALUES ($1, $2, $3, $4, $5, $6, now())', [
      id,
      (id % 20) + 1,
      `Report ${id}.pdf`,
      'application/pdf',
      size,
      key,
    ]);
    puts.push(store.put(SOURCE_BUCKET, key, content(id, size), { size }));
    app.originals++;
    app.bytes += size;
    if (id % 2 === 0) {
      // what Liferay generates and can generate again: thumbnails and previews
      puts.push(
        store.put(SOURCE_BUCKET, `document_library/20097/thumbnails/${id}/1.0.png`, content(-id, 8 * 1024)),
      );
      puts.push(
        store.put(
          SOURCE_BUCKET,
          `document_library/20097/previews/${id}/1.0.pdf`,
          content(-id - 1e6, 32 * 1024),
        ),
      );
      app.renditions += 2;
    }
    if (puts.length >= 32) await Promise.all(puts.splice(0));
  }
  await Promise.all(puts);
  await client.query(`INSERT INTO assetentry SELECT g, g, g % 97 FROM generate_series(1, 400) g`);
  return app;
}

async function tableDigest(client: pg.Client): Promise<Record<string, string>> {
  const digest: Record<string, string> = {};
  for (const table of ['dlfolder', 'dlfileentry', 'assetentry']) {
    const { rows } = await client.query<{ n: string; md5: string }>(
      `SELECT count(*)::text AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS md5 FROM ${table} t`,
    );
    digest[table] = `${rows[0]?.n ?? '?'} rows, md5 ${rows[0]?.md5 ?? '?'}`;
  }
  return digest;
}

async function objectHashes(store: ObjectStore, bucket: string): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for await (const object of listAll({ store, bucket, prefix: '' })) {
    hashes.set(object.key, await sha256Of(await store.get(bucket, object.key)));
  }
  return hashes;
}

async function connect(conn: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(conn);
  await client.connect();
  return client;
}

export async function demoCommand(options: GlobalOptions, signal: AbortSignal): Promise<number> {
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  out(
    'lc2-backup demo: starting PostgreSQL 15 and MinIO on loopback ports (the first run builds MinIO, about 3 min)…',
  );
  const bed = await Testbed.create();
  const work = await mkdtemp(join(tmpdir(), 'lc2-demo-'));
  try {
    const info = await bed.up(['postgres', 'minio']);
    if (!info.postgres || !info.s3) throw new Error('the test bed did not start PostgreSQL and MinIO');
    signal.throwIfAborted();
    const { minioStore, database: db } = testbedConfig({ postgres: info.postgres, s3: info.s3 });
    const config = parseConfig(
      {
        catalog: `pglite://${join(work, 'catalog')}`,
        stores: { minio: minioStore },
        projects: {
          retail: {
            provider: 'local',
            databases: { 'retail-prd-db': db('retail_prd'), 'retail-clone-db': db('postgres') },
            buckets: { [SOURCE_BUCKET]: 'minio', [BACKUP_BUCKET]: 'minio', [CLONE_BUCKET]: 'minio' },
          },
        },
        engine: { concurrency: 16 },
      },
      'demo configuration',
    );
    const catalog = await openCatalog(config.catalog);
    const progress = progressPrinter(process.stderr, options.quiet === true);
    const ctx: EngineContext = {
      config,
      catalog,
      stores: new StoreRegistry(config),
      log: lineLogger((l) => process.stderr.write(l)),
      onProgress: progress.onProgress,
      initiator: 'demo',
      toolVersion,
      signal,
    };
    try {
      return await runDemo(ctx, info.postgres, out, progress.done);
    } finally {
      await catalog.close();
    }
  } finally {
    out('cleaning up: stopping PostgreSQL and MinIO, removing their data…');
    await bed.stop();
    await rm(work, { recursive: true, force: true });
  }
}

async function runDemo(
  ctx: EngineContext,
  pgInfo: { host: string; port: number; user: string; password: string },
  out: (line: string) => void,
  progressDone: () => void,
): Promise<number> {
  const store = ctx.stores.get('minio');
  for (const bucket of [SOURCE_BUCKET, BACKUP_BUCKET]) await store.createBucket(bucket);
  const admin = await connect({ ...pgInfo, database: 'postgres' });
  await admin.query('CREATE DATABASE retail_prd');
  await admin.end();
  const source = await connect({ ...pgInfo, database: 'retail_prd' });
  const app = await createSampleApp(source, store);
  const sourceDigest = await tableDigest(source);
  await source.end();
  out(
    `sample application "retail/prd": database retail_prd (3 tables), bucket ${SOURCE_BUCKET} with ${app.originals} originals (${humanBytes(app.bytes)}) and ${app.renditions} generated renditions`,
  );

  const request = buildResource(
    'BackupRequest',
    {
      projectId: 'retail',
      environment: 'prd',
      database: { type: 'dump', instanceId: 'retail-prd-db' },
      documentLibrary: {
        sourceBucket: SOURCE_BUCKET,
        destinationBucket: BACKUP_BUCKET,
        excludeGeneratedFiles: true,
      },
    },
    { name: 'retail-prd-demo' },
    'demo BackupRequest',
  );
  const backup = await runBackup(ctx, request);
  progressDone();
  const { header } = backup;
  const backupBytes = header.database.size + header.documentLibrary.totalSize;
  out(
    `backup ${header.backupId}: Succeeded in ${humanDuration(backup.durationMs / 1000)} (${humanBytes((backupBytes * 1000) / Math.max(backup.durationMs, 1))}/s)`,
  );
  out(
    `  database: pg_dump ${humanBytes(header.database.artifact?.uncompressedSize ?? 0)} → ${humanBytes(header.database.size)} zstd`,
  );
  out(
    `  documents: ${header.documentLibrary.objectCount} copied (${humanBytes(header.documentLibrary.totalSize)}), ${header.documentLibrary.excludedCount} generated renditions excluded`,
  );
  out(`  manifest: ${backup.manifestPath}`);

  const verifyStarted = Date.now();
  const report = await verifyBackup(ctx, header.backupId, { deep: true });
  progressDone();
  out(
    `verify --deep: ${report.ok ? 'OK' : 'FAILED'} — ${report.objectsChecked} documents and the dump re-hashed in ${humanDuration((Date.now() - verifyStarted) / 1000)}`,
  );
  for (const p of report.problems) out(`  BAD ${p.object}: ${p.problem}`);
  if (!report.ok) return exitCodes.integrity;

  const restore = await runRestore(
    ctx,
    buildResource(
      'RestoreRequest',
      {
        projectId: 'retail',
        environment: 'prd',
        source: { backupId: header.backupId },
        target: {
          database: { instanceId: 'retail-clone-db', databaseName: 'retail_clone' },
          documentLibrary: { bucket: CLONE_BUCKET },
        },
      },
      { name: 'retail-clone' },
      'demo RestoreRequest',
    ),
  );
  progressDone();
  out(
    `restore ${restore.restoreId}: Succeeded in ${humanDuration(restore.durationMs / 1000)} → database retail_clone, bucket ${CLONE_BUCKET}`,
  );

  const equal = await proveEqual(
    ctx,
    { pgInfo, sourceDigest, excludedPatterns: header.documentLibrary.excludedPatterns },
    out,
  );
  out(
    equal
      ? 'demo: the restored application is identical to the backed-up one.'
      : 'demo: FAILED — the restore differs (see above)',
  );
  return equal ? exitCodes.ok : exitCodes.integrity;
}

async function proveEqual(
  ctx: EngineContext,
  known: { pgInfo: pg.ClientConfig; sourceDigest: Record<string, string>; excludedPatterns: string[] },
  out: (line: string) => void,
): Promise<boolean> {
  const { pgInfo, sourceDigest } = known;
  const store = ctx.stores.get('minio');
  const clone = await connect({ ...pgInfo, database: 'retail_clone' });
  const cloneDigest = await tableDigest(clone);
  await clone.end();
  let equal = true;
  for (const [table, digest] of Object.entries(sourceDigest)) {
    const same = cloneDigest[table] === digest;
    equal &&= same;
    out(`  table ${table.padEnd(12)} ${same ? 'identical' : 'DIFFERS'}: ${digest}`);
  }
  const excluded = keyMatcher(known.excludedPatterns);
  const original = await objectHashes(store, SOURCE_BUCKET);
  const restored = await objectHashes(store, CLONE_BUCKET);
  let matched = 0;
  const renditions: string[] = [];
  for (const [key, sha] of original) {
    if (excluded(key)) {
      renditions.push(key);
      continue;
    }
    if (restored.get(key) === sha) matched++;
    else {
      equal = false;
      out(`  object ${key}: ${restored.has(key) ? 'SHA-256 DIFFERS' : 'MISSING'} after restore`);
    }
  }
  const extra = [...restored.keys()].filter((k) => !original.has(k) || excluded(k));
  equal &&= extra.length === 0;
  out(
    `  documents: ${matched}/${original.size - renditions.length} restored with identical SHA-256; ${renditions.length} generated renditions excluded by ${known.excludedPatterns.slice(0, 2).join(', ')}… (e.g. ${renditions[0] ?? '-'})`,
  );
  return equal;
}
