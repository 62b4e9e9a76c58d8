// A real application on the test bed for engine tests: a source database with schema and data,
// a source bucket of originals and generated renditions, a backup bucket, and an engine context
// (catalog in an in-memory PGlite) configured for one project, "retail".
import { createHash, randomBytes } from 'node:crypto';
import { listAll, sha256Of } from '../../../src/components/documentLibrary/copy.ts';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { BackupRequest } from '../../../api/v1alpha1/backupRequest.ts';
import { RestoreRequest } from '../../../api/v1alpha1/restoreRequest.ts';
import { buildResource } from '../../../api/v1alpha1/parse.ts';
import { openCatalog, type Catalog } from '../../../src/catalog/catalog.ts';
import { parseConfig, type Config } from '../../../src/config/config.ts';
import type { EngineContext } from '../../../src/engine/context.ts';
import { StoreRegistry } from '../../../src/engine/stores.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import type { ObjectStore } from '../../../src/providers/types.ts';
import { deleteBucket, s3Client, testbed, uniqueName, withPg } from '../../env/fixtures.ts';
import { testbedConfig } from '../../env/testbed.ts';

export interface App {
  sourceDb: string;
  sourceBucket: string;
  backupBucket: string;
  cloneBucket: string;
  otherBucket: string;
  config: Config;
  catalog: Catalog;
  ctx: EngineContext;
  store: ObjectStore;
  /** key → bytes of every object put in the source bucket */
  objects: Map<string, Buffer>;
}

export const generatedKeys = (key: string): boolean => /\/(thumbnails|previews)\//.test(key);

export function appConfig(
  names: {
    sourceDb: string;
    sourceBucket: string;
    backupBucket: string;
    cloneBucket: string;
    otherBucket: string;
  },
  extra: Record<string, unknown> = {},
): Config {
  const { minioStore, database: db } = testbedConfig(testbed());
  return parseConfig(
    {
      stores: { minio: minioStore },
      projects: {
        retail: {
          provider: 'local',
          databases: {
            'retail-prd-db': db(names.sourceDb),
            'retail-clone-db': db('postgres'),
            'retail-down-db': db(names.sourceDb, 1),
          },
          buckets: {
            [names.sourceBucket]: 'minio',
            [names.backupBucket]: 'minio',
            [names.cloneBucket]: 'minio',
          },
        },
        other: {
          provider: 'local',
          databases: { 'other-db': db('postgres') },
          buckets: { [names.otherBucket]: 'minio' },
        },
      },
      engine: { concurrency: 8, ...extra },
    },
    'test configuration',
  );
}

export function backupRequest(
  app: Pick<App, 'sourceBucket' | 'backupBucket'>,
  overrides: Record<string, unknown> = {},
  name?: string,
): BackupRequest {
  return buildResource(
    'BackupRequest',
    {
      projectId: 'retail',
      environment: 'prd',
      database: { type: 'dump', instanceId: 'retail-prd-db' },
      documentLibrary: {
        sourceBucket: app.sourceBucket,
        destinationBucket: app.backupBucket,
        excludeGeneratedFiles: true,
      },
      ...overrides,
    },
    name === undefined ? {} : { name },
    'test BackupRequest',
  );
}

export function restoreRequest(
  backupId: string,
  target: { databaseName: string; bucket: string; prefix?: string },
): RestoreRequest {
  return buildResource(
    'RestoreRequest',
    {
      projectId: 'retail',
      environment: 'prd',
      source: { backupId },
      target: {
        database: { instanceId: 'retail-clone-db', databaseName: target.databaseName },
        documentLibrary: {
          bucket: target.bucket,
          ...(target.prefix === undefined ? {} : { prefix: target.prefix }),
        },
      },
    },
    {},
    'test RestoreRequest',
  );
}

/** Builds the application before the file's tests and removes it after them. */
export function useApp(
  options: { objects?: number; engine?: Record<string, unknown>; bigObject?: number } = {},
): App {
  const app = {} as App;
  beforeAll(async () => {
    const names = {
      sourceDb: uniqueName('src').replace(/-/g, '_'),
      sourceBucket: uniqueName('src'),
      backupBucket: uniqueName('bak'),
      cloneBucket: uniqueName('clone'),
      otherBucket: uniqueName('other'),
    };
    Object.assign(app, names);
    app.config = appConfig(names, options.engine);
    app.catalog = await openCatalog('pglite://memory');
    app.ctx = {
      config: app.config,
      catalog: app.catalog,
      stores: new StoreRegistry(app.config),
      log: silentLogger,
      toolVersion: 'test',
    };
    app.store = app.ctx.stores.get('minio');
    await withPg('postgres', (c) => c.query(`CREATE DATABASE "${names.sourceDb}"`));
    await withPg(names.sourceDb, async (c) => {
      await c.query(`CREATE TABLE dlfileentry (id bigint PRIMARY KEY, title text NOT NULL, dlkey text NOT NULL, data bytea, created timestamptz DEFAULT now());
        CREATE INDEX ON dlfileentry (dlkey);
        CREATE VIEW recent AS SELECT id, title FROM dlfileentry WHERE id > 10;
        CREATE SEQUENCE invoice_seq START 1000;`);
      await c.query(
        `INSERT INTO dlfileentry (id, title, dlkey, data) SELECT g, 'Doc ' || g, 'dl/' || g, decode(repeat(md5(g::text), 8), 'hex') FROM generate_series(1, 3000) g`,
      );
      await c.query(`SELECT nextval('invoice_seq')`);
    });
    for (const bucket of [names.sourceBucket, names.backupBucket, names.otherBucket])
      await app.store.createBucket(bucket);
    app.objects = new Map();
    const count = options.objects ?? 40;
    for (let i = 0; i < count; i++) {
      const key =
        i % 4 === 3 ? `document_library/1/thumbnails/${i}.png` : `document_library/1/${i % 3}/${i} é.pdf`;
      const body = randomBytes(i === 0 ? 0 : 1000 + i * 997);
      app.objects.set(key, body);
      await app.store.put(names.sourceBucket, key, body, { size: body.length });
    }
    if (options.bigObject !== undefined) {
      const body = randomBytes(options.bigObject);
      app.objects.set('document_library/1/big/video.mp4', body);
      await app.store.put(names.sourceBucket, 'document_library/1/big/video.mp4', body, {
        size: body.length,
      });
    }
  });
  afterAll(async () => {
    await app.catalog.close();
    const s3 = s3Client();
    for (const bucket of [app.sourceBucket, app.backupBucket, app.cloneBucket, app.otherBucket]) {
      await deleteBucket(s3, bucket).catch(() => undefined);
    }
    await withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS "${app.sourceDb}" WITH (FORCE)`));
  });
  return app;
}

/** pg_dump --schema-only + --data-only text of a database, for comparing two of them. */
export async function dumpText(database: string): Promise<string> {
  const { run } = await import('../../env/exec.ts');
  const bed = testbed();
  const text = await run(
    `${bed.postgres.binDir}/pg_dump`,
    [
      '-h',
      bed.postgres.host,
      '-p',
      String(bed.postgres.port),
      '-U',
      bed.postgres.user,
      '--no-owner',
      '--no-acl',
      '-d',
      database,
    ],
    { env: { ...process.env, PGPASSWORD: bed.postgres.password } },
  );
  // the dump names its database nowhere but in comments; drop comments and the restrict keys
  return text
    .split('\n')
    .filter((l) => !l.startsWith('--') && !l.startsWith('\\restrict') && !l.startsWith('\\unrestrict'))
    .join('\n');
}

export async function dropDatabase(name: string): Promise<void> {
  await withPg('postgres', (c: pg.Client) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

/** key → SHA-256 of every object in a bucket, read back from the store. */
export async function storedHashes(
  store: ObjectStore,
  bucket: string,
  prefix = '',
): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for await (const o of listAll({ store, bucket, prefix }))
    hashes.set(o.key, await sha256Of(await store.get(bucket, o.key)));
  return hashes;
}

/** key → SHA-256 of the source objects a backup with excludeGeneratedFiles keeps. */
export function expectedHashes(app: Pick<App, 'objects'>): Map<string, string> {
  return new Map(
    [...app.objects]
      .filter(([k]) => !generatedKeys(k))
      .map(([k, body]) => [k, createHash('sha256').update(body).digest('hex')]),
  );
}
