// `catalog rebuild`: the manifests in the buckets can re-create the history. Every manifest
// found is upserted; a Succeeded row whose manifest is gone is marked ManifestMissing.
import { listAll } from '../components/documentLibrary/copy.ts';
import { manifestSearchPrefix, parseManifestKey } from '../format/layout.ts';
import type { EngineContext } from './context.ts';
import { manifestPath, manifestSummary, readManifest } from './manifests.ts';

export interface RebuildReport {
  scannedBuckets: string[];
  manifests: number;
  inserted: number;
  updated: number;
  unchanged: number;
  unreadable: { path: string; problem: string }[];
  missing: string[];
}

async function scanBucket(
  ctx: EngineContext,
  where: { projectId: string; bucket: string; storeName: string },
  report: RebuildReport,
  found: Set<string>,
): Promise<void> {
  const { projectId, bucket, storeName } = where;
  const store = ctx.stores.get(storeName);
  if (!(await store.bucketExists(bucket))) return;
  report.scannedBuckets.push(`${storeName}:${bucket}`);
  for await (const object of listAll({ store, bucket, prefix: manifestSearchPrefix(projectId) })) {
    if (!parseManifestKey(object.key)) continue;
    const path = manifestPath(store, bucket, object.key);
    try {
      const header = await readManifest(store, bucket, object.key);
      const result = await ctx.catalog.upsertFromManifest(manifestSummary(header, path));
      found.add(header.backupId);
      report.manifests++;
      if (result.outcome === 'inserted') report.inserted++;
      else if (result.outcome === 'updated') report.updated++;
      else report.unchanged++;
    } catch (err) {
      report.unreadable.push({ path, problem: (err as Error).message });
    }
  }
}

export async function rebuildCatalog(ctx: EngineContext, onlyProject?: string): Promise<RebuildReport> {
  const report: RebuildReport = {
    scannedBuckets: [],
    manifests: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    unreadable: [],
    missing: [],
  };
  const found = new Set<string>();
  for (const [projectId, project] of Object.entries(ctx.config.projects)) {
    if (onlyProject !== undefined && projectId !== onlyProject) continue;
    for (const [bucket, storeName] of Object.entries(project.buckets)) {
      await scanBucket(ctx, { projectId, bucket, storeName }, report, found);
    }
  }
  for (const row of await ctx.catalog.listBackups({
    projectId: onlyProject,
    state: 'Succeeded',
    limit: 10000,
  })) {
    if (found.has(row.backupId)) continue;
    await ctx.catalog.markManifestMissing(row.backupId);
    report.missing.push(row.backupId);
  }
  return report;
}
