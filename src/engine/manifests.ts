// Reading backups back: a manifest header from its bucket, the summary the catalog keeps of it,
// and locating a backup by id (catalog first; else the configured projects' buckets).
import type { ManifestSummary } from '../catalog/types.ts';
import type { Config } from '../config/config.ts';
import { NotFoundError } from '../errors/index.ts';
import { backupLayout } from '../format/layout.ts';
import { decodeManifest, type ManifestHeader } from '../format/manifest.ts';
import type { ObjectStore } from '../providers/types.ts';
import type { EngineContext } from './context.ts';

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function manifestPath(store: ObjectStore, bucket: string, key: string): string {
  return `${store.name.replace(/\/+$/, '')}/${bucket}/${key}`;
}

export async function readManifest(store: ObjectStore, bucket: string, key: string): Promise<ManifestHeader> {
  return decodeManifest(await readAll(await store.get(bucket, key)), manifestPath(store, bucket, key));
}

export function manifestSummary(header: ManifestHeader, path: string): ManifestSummary {
  return {
    backupId: header.backupId,
    projectId: header.projectId,
    environment: header.environment,
    provider: header.provider,
    startTime: new Date(header.timestamp),
    completionTime: new Date(header.completedAt),
    dbType: header.database.type === 'pg-dump' ? 'dump' : 'snapshot',
    dbInstanceId: header.database.instanceId,
    dbSnapshotId: header.database.snapshotId ?? header.database.artifact?.key,
    dbSnapshotSizeBytes: header.database.size,
    dlSourceBucket: header.documentLibrary.sourceBucket,
    dlDestinationBucket: header.documentLibrary.bucket,
    dlDestinationPrefix: header.documentLibrary.prefix,
    dlObjectCount: header.documentLibrary.objectCount,
    dlTotalSizeBytes: header.documentLibrary.totalSize,
    manifestPath: path,
    manifestChecksum: header.checksum.replace(/^sha256:/, ''),
  };
}

export interface LocatedBackup {
  header: ManifestHeader;
  store: ObjectStore;
  storeName: string;
  bucket: string;
  manifestKey: string;
}

// `retail-prd-backup-20251109-143000` → candidates (project, environment, timestamp) among the
// configured projects; project ids and environments may contain "-", so try each project.
function candidates(
  config: Config,
  backupId: string,
): { projectId: string; environment: string; timestamp: string }[] {
  const m = /^(.+)-backup-(\d{8}-\d{6})$/.exec(backupId);
  if (!m) return [];
  const [, stem = '', timestamp = ''] = m;
  return Object.keys(config.projects)
    .filter((p) => stem.startsWith(`${p}-`) && stem.length > p.length + 1)
    .map((projectId) => ({ projectId, environment: stem.slice(projectId.length + 1), timestamp }));
}

/** Finds a backup's manifest; NotFoundError when no configured bucket holds it. */
export async function locateBackup(ctx: EngineContext, backupId: string): Promise<LocatedBackup> {
  const row = await ctx.catalog.getBackup(backupId);
  const tried: string[] = [];
  for (const c of candidates(ctx.config, backupId)) {
    const project = ctx.config.projects[c.projectId];
    if (!project) continue;
    const layout = backupLayout(c.projectId, c.environment, c.timestamp);
    // the bucket the catalog names first, then every bucket of the project
    const buckets = Object.keys(project.buckets).sort(
      (a, b) => Number(b === row?.dlDestinationBucket) - Number(a === row?.dlDestinationBucket),
    );
    for (const bucket of buckets) {
      const storeName = project.buckets[bucket] ?? '';
      const store = ctx.stores.get(storeName);
      tried.push(`${bucket}/${layout.manifestKey}`);
      if ((await store.head(bucket, layout.manifestKey).catch(() => undefined)) === undefined) continue;
      return {
        header: await readManifest(store, bucket, layout.manifestKey),
        store,
        storeName,
        bucket,
        manifestKey: layout.manifestKey,
      };
    }
  }
  const state = row
    ? ` (the catalog records it as ${row.state}${row.failureReason === null ? '' : `: ${row.failureReason}`})`
    : '';
  throw new NotFoundError(
    `backup "${backupId}": no manifest found${state}; looked in ${tried.join(', ') || 'no configured project matching the id'}. A backup without a manifest is incomplete and cannot be restored`,
  );
}
