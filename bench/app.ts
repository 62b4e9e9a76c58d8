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
import { BY_HAND, dropBucket, pgEnv, restoreByHand, s5cmd, shellWord, type Bench } from './context.ts';
import { measureInProcess, measurePeer, type PeerCommand } from './measure.ts';
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

function shellLine(command: PeerCommand): string {
  return [command.command, ...command.args].map(shellWord).join(' ');
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
    {
      tool: BY_HAND,
      run: async (rep) => {
        const database = `p7_hand_${rep}`;
        const bucket = `p7-hand-${rep}`;
        await bench.stores.get('minio').createBucket(bucket);
        const copy = s5cmd(bench.tools, bench.s3, [
          'cp',
          `s3://backups/${backup.prefix}/*`,
          `s3://${bucket}/`,
        ]);
        const db = restoreByHand(bench, backup.dump, { database, file: join(bench.dir, 'p7-hand.pgdump') });
        const sample = await measurePeer(bench.serverPids(), {
          command: '/bin/bash',
          args: ['-c', `set -e; (${db.args[1] ?? ''}) & db=$!; ${shellLine(copy)} > /dev/null; wait $db`],
          env: { ...db.env, ...copy.env },
        });
        await options.dropDatabase(database);
        await dropBucket(bench, bench.s3, bucket);
        return sample;
      },
    },
    {
      tool: 'pg_restore+s5cmd',
      run: async (rep) => {
        const database = `p7_peer_${rep}`;
        const bucket = `p7-peer-${rep}`;
        await bench.stores.get('minio').createBucket(bucket);
        const copy = s5cmd(bench.tools, bench.s3, [
          'cp',
          `s3://backups/${backup.prefix}/*`,
          `s3://${bucket}/`,
        ]);
        const db = `"${bin('createdb')}" ${database} && "${bin('pg_restore')}" -j2 --no-owner --no-acl --exit-on-error -d ${database} "${options.dumpFile}"`;
        const quoted = shellLine(copy);
        const sample = await measurePeer(bench.serverPids(), {
          command: '/bin/bash',
          args: ['-c', `set -e; (${db}) & db=$!; ${quoted} > /dev/null; wait $db`],
          env: { ...pgEnv(bench.pg), ...copy.env },
        });
        await options.dropDatabase(database);
        await dropBucket(bench, bench.s3, bucket);
        return sample;
      },
    },
  ];
}
