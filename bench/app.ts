// P7: a whole application (database + document library) backed up once by our engine, then
// restored by runRestore, against pg_restore -j2 and s5cmd cp run together by hand.
import { join } from 'node:path';

import { buildResource } from '../api/v1alpha1/parse.ts';
import { RestoreRequest } from '../api/v1alpha1/restoreRequest.ts';
import { openCatalog, type Catalog } from '../src/catalog/catalog.ts';
import type { EngineContext } from '../src/engine/context.ts';
import { runBackup } from '../src/engine/backup/backup.ts';
import { runRestore } from '../src/engine/restore/restore.ts';
import { silentLogger } from '../src/observability/logger.ts';
import {
  bash,
  BY_HAND,
  dropBucket,
  pgEnv,
  restoreByHand,
  s5cmd,
  shellLine,
  shellWord,
  type Bench,
  type ShellJob,
} from './context.ts';
import { measureInProcess, measurePeer } from './measure.ts';
import type { Contender } from './scenarios.ts';

export const appProject = 'bench';

/** The buckets P7's restores write into (the configuration must name them). */
export function restoreBuckets(reps: number): string[] {
  return Array.from({ length: reps }, (_, i) => `p7-ours-${i + 1}`);
}

interface Backup {
  catalog: Catalog;
  backupId: string;
  /** Where the document copies are in bucket `backups`. */
  prefix: string;
  /** The stored (compressed) database dump. */
  dump: { bucket: string; key: string };
}

function appBackup(bench: Bench): Promise<Backup> {
  return bench.once('application backup', async () => {
    bench.log('backing up the application (benchdb + src without small/) with lc2-backup');
    await bench.stores.get('minio').createBucket('backups');
    const catalog = await openCatalog('pglite://memory');
    const ctx: EngineContext = { config: bench.config, catalog, stores: bench.stores, log: silentLogger };
    const request = buildResource(
      'BackupRequest',
      {
        projectId: appProject,
        environment: 'prd',
        database: { type: 'dump', instanceId: 'bench-db' },
        documentLibrary: { sourceBucket: 'src', destinationBucket: 'backups', excludeGeneratedFiles: true },
      },
      { name: 'bench-app-backup-20260101-000000' },
      'bench BackupRequest',
    );
    const result = await runBackup(ctx, request);
    const artifact = result.header.database.artifact;
    if (artifact === undefined) throw new Error('bench: the application backup stored no database dump');
    return {
      catalog,
      backupId: result.header.backupId,
      prefix: result.header.documentLibrary.prefix,
      dump: { bucket: artifact.bucket, key: artifact.key },
    };
  });
}

function restoreRequest(backupId: string, databaseName: string, bucket: string): RestoreRequest {
  return buildResource(
    'RestoreRequest',
    {
      projectId: appProject,
      environment: 'prd',
      source: { backupId },
      target: { database: { instanceId: 'bench-db', databaseName }, documentLibrary: { bucket } },
    },
    {},
    'bench RestoreRequest',
  );
}

/**
 * A peer restore of the application: the database restore `database(name)` in the background
 * while `s5cmd cp` copies the documents into a new bucket; both in one measured bash.
 */
function peerWithDocumentCopy(
  bench: Bench,
  prefix: string,
  peer: {
    tool: string;
    name: string;
    database: (name: string) => ShellJob;
    dropDatabase: (name: string) => Promise<void>;
  },
): Contender {
  return {
    tool: peer.tool,
    run: async (rep) => {
      const database = `p7_${peer.name}_${rep}`;
      const bucket = `p7-${peer.name}-${rep}`;
      await bench.stores.get('minio').createBucket(bucket);
      const copy = s5cmd(bench.tools, bench.s3, ['cp', `s3://backups/${prefix}/*`, `s3://${bucket}/`]);
      const db = peer.database(database);
      const sample = await measurePeer(
        bench.serverPids(),
        bash({
          line: `(${db.line}) & db=$!; ${shellLine(copy)} > /dev/null; wait $db`,
          env: { ...db.env, ...copy.env },
        }),
      );
      await peer.dropDatabase(database);
      await dropBucket(bench, bench.s3, bucket);
      return sample;
    },
  };
}

export async function restoreApp(
  bench: Bench,
  options: { dumpFile: string; dropDatabase: (name: string) => Promise<void> },
): Promise<Contender[]> {
  const backup = await appBackup(bench);
  const ctx: EngineContext = {
    config: bench.config,
    catalog: backup.catalog,
    stores: bench.stores,
    log: silentLogger,
  };
  const bin = (name: string): string => join(bench.tools.pgBin, name);
  return [
    {
      tool: 'lc2-backup',
      run: async (rep) => {
        const database = `p7_ours_${rep}`;
        const bucket = `p7-ours-${rep}`;
        const sample = await measureInProcess(bench.serverPids(), async () => {
          await runRestore(ctx, restoreRequest(backup.backupId, database, bucket));
        });
        await options.dropDatabase(database);
        await dropBucket(bench, bench.s3, bucket);
        return sample;
      },
    },
    peerWithDocumentCopy(bench, backup.prefix, {
      tool: BY_HAND,
      name: 'hand',
      database: (database) =>
        restoreByHand(bench, backup.dump, { database, file: join(bench.dir, 'p7-hand.pgdump') }),
      dropDatabase: options.dropDatabase,
    }),
    peerWithDocumentCopy(bench, backup.prefix, {
      tool: 'pg_restore+s5cmd',
      name: 'peer',
      database: (database) => ({
        line: `${shellWord(bin('createdb'))} ${database} && ${shellWord(bin('pg_restore'))} -j2 --no-owner --no-acl --exit-on-error -d ${database} ${shellWord(options.dumpFile)}`,
        env: pgEnv(bench.pg),
      }),
      dropDatabase: options.dropDatabase,
    }),
  ];
}
