// Verify: nothing is reported restorable that cannot be restored. Checks the manifest's own
// checksum, the entries' checksum, and every stored artifact (exists, size, SHA-256 where the
// store keeps one); `deep` re-reads and re-hashes every byte.
import { forEachLimit } from '../../components/documentLibrary/copy.ts';
import { readEntries } from '../../format/entries.ts';
import type { DocumentEntry } from '../../format/manifest.ts';
import type { EngineContext } from '../context.ts';
import { snapshotsFor } from '../databases.ts';
import { locateBackup, type LocatedBackup } from '../manifests.ts';
import { ProgressTracker } from '../progress.ts';
import { digestObject } from '../../storage/digest.ts';

export interface VerifyProblem {
  /** The bucket/key of the bad object, or "manifest". */
  object: string;
  problem: string;
}

export interface VerifyReport {
  backupId: string;
  deep: boolean;
  ok: boolean;
  objectsChecked: number;
  bytesChecked: number;
  problems: VerifyProblem[];
}

async function checkDatabase(
  located: LocatedBackup,
  deep: boolean,
  problems: VerifyProblem[],
): Promise<number> {
  const artifact = located.header.database.artifact;
  if (!artifact) return 0;
  const where = `${artifact.bucket}/${artifact.key}`;
  const info = await located.store.head(artifact.bucket, artifact.key);
  if (!info) {
    problems.push({ object: where, problem: 'database dump is missing' });
    return 0;
  }
  if (info.size !== located.header.database.size) {
    problems.push({
      object: where,
      problem: `size ${info.size} differs from the manifest's ${located.header.database.size}`,
    });
  }
  const expected = located.header.database.checksum?.replace(/^sha256:/, '');
  const actual = deep
    ? (await digestObject(located.store, artifact.bucket, artifact.key)).sha256
    : info.sha256;
  if (expected !== undefined && actual !== undefined && actual !== expected) {
    problems.push({ object: where, problem: `SHA-256 ${actual} differs from the manifest's ${expected}` });
  }
  return info.size;
}

/** A snapshot backup's database lives in the provider: it must still be there and available. */
async function checkSnapshot(
  ctx: EngineContext,
  located: LocatedBackup,
  problems: VerifyProblem[],
): Promise<void> {
  const { snapshotId } = located.header.database;
  if (snapshotId === undefined) return;
  const snapshots = snapshotsFor(ctx, located.header.projectId);
  const object = `${snapshots.name}/${snapshotId}`;
  const snapshot = await snapshots.getSnapshot(snapshotId);
  if (snapshot === undefined) {
    problems.push({ object, problem: 'database snapshot is missing (deleted outside lc2-backup?)' });
  } else if (snapshot.status !== 'available') {
    problems.push({ object, problem: `database snapshot is "${snapshot.status}", not available` });
  } else if (snapshot.instanceId !== located.header.database.instanceId) {
    problems.push({
      object,
      problem: `database snapshot is of instance "${snapshot.instanceId}", the manifest says "${located.header.database.instanceId}"`,
    });
  }
}

async function checkEntry(
  located: LocatedBackup,
  entry: DocumentEntry,
  deep: boolean,
): Promise<string | undefined> {
  const info = await located.store.head(located.bucket, entry.storedKey);
  if (!info) return 'missing';
  if (info.size !== entry.size) return `size ${info.size} differs from the manifest's ${entry.size}`;
  const actual = deep
    ? (await digestObject(located.store, located.bucket, entry.storedKey)).sha256
    : info.sha256;
  if (actual !== undefined && actual !== entry.sha256)
    return `SHA-256 ${actual} differs from the manifest's ${entry.sha256}`;
  return undefined;
}

export async function verifyBackup(
  ctx: EngineContext,
  backupId: string,
  options: { deep?: boolean } = {},
): Promise<VerifyReport> {
  const deep = options.deep ?? false;
  const located = await locateBackup(ctx, backupId);
  const { header } = located;
  const problems: VerifyProblem[] = [];
  let bytesChecked = await checkDatabase(located, deep, problems);
  await checkSnapshot(ctx, located, problems);
  let objectsChecked = 0;
  const progress = new ProgressTracker(deep ? 'verify (deep)' : 'verify', ctx.onProgress);
  progress.setTotals(header.documentLibrary.objectCount, header.documentLibrary.totalSize);
  const dl = header.documentLibrary;
  try {
    const body = await located.store.get(located.bucket, dl.entries.key);
    await forEachLimit(
      readEntries(body, dl.entries.checksum, `${located.bucket}/${dl.entries.key}`),
      ctx.config.engine.concurrency,
      async (entry) => {
        const problem = await checkEntry(located, entry, deep);
        if (problem !== undefined)
          problems.push({
            object: `${located.bucket}/${entry.storedKey}`,
            problem: `document "${entry.key}": ${problem}`,
          });
        objectsChecked++;
        bytesChecked += entry.size;
        progress.add(1, entry.size);
      },
    );
  } catch (err) {
    problems.push({ object: `${located.bucket}/${dl.entries.key}`, problem: (err as Error).message });
  }
  if (objectsChecked !== dl.objectCount) {
    problems.push({
      object: `${located.bucket}/${dl.entries.key}`,
      problem: `holds ${objectsChecked} entries, the manifest says ${dl.objectCount}`,
    });
  }
  progress.finish();
  return { backupId, deep, ok: problems.length === 0, objectsChecked, bytesChecked, problems };
}
