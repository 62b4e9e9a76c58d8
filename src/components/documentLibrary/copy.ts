// The document-library step: list the source bucket page by page, skip excluded keys, copy
// each object with bounded concurrency (server-side inside one store, streamed GET→PUT across
// stores), take its SHA-256 (from the store when it computed one, else by hashing the bytes),
// and stream an entry per object into the manifest. Nothing here holds the whole listing.
import type { Readable } from 'node:stream';
import { documentKey } from '../../format/layout.ts';
import type { DocumentEntry } from '../../format/manifest.ts';
import { NotFoundError } from '../../errors/index.ts';
import type { ListPage, ObjectInfo, ObjectStore } from '../../providers/types.ts';
import type { ProgressTracker } from '../../engine/progress.ts';
import { digestObject, digestStream } from '../../storage/digest.ts';

export interface Location {
  store: ObjectStore;
  bucket: string;
  prefix: string;
}

/**
 * Lists every object under a location, page by page. The next page is asked for while this one
 * is consumed: waiting for it after the last object left every copy worker idle for a listing
 * round trip once per page (docs/performance.md, P1a).
 */
export async function* listAll(at: Location, pageSize = 1000): AsyncGenerator<ObjectInfo> {
  const pageAfter = (token: string | undefined): Promise<ListPage> =>
    at.store.list(at.bucket, at.prefix, { token, limit: pageSize });
  let page = await pageAfter(undefined);
  for (;;) {
    const next = page.nextToken === undefined ? undefined : pageAfter(page.nextToken);
    // a consumer that stops early leaves the prefetched page unread, not unhandled
    next?.catch(() => undefined);
    yield* page.objects;
    if (next === undefined) return;
    page = await next;
  }
}

/**
 * SHA-256 of a stream's bytes. For an object already stored use `digestObject`
 * (src/storage/digest.ts): the store may hash it faster itself.
 */
export async function sha256Of(stream: Readable): Promise<string> {
  return (await digestStream(stream)).sha256;
}

/** Copies one object from one location to another and returns the copy's info with its SHA-256. */
export interface ObjectAt {
  store: ObjectStore;
  bucket: string;
  key: string;
}

export async function copyObject(
  from: ObjectAt,
  to: ObjectAt,
  size: number,
): Promise<ObjectInfo & { sha256: string }> {
  const fromKey = from.key;
  const toKey = to.key;
  if (from.store === to.store) {
    const copied = await from.store.copy(from.bucket, fromKey, to.bucket, toKey, { size });
    const sha256 = copied.sha256 ?? (await digestObject(to.store, to.bucket, toKey)).sha256;
    return { ...copied, sha256 };
  }
  // every store hashes the bytes it stores (ObjectStore.put returns their SHA-256): hashing them
  // here as well doubled the CPU of a streamed copy (docs/performance.md, P1b)
  const source = await from.store.get(from.bucket, fromKey);
  const stored = await to.store.put(to.bucket, toKey, source, { size });
  const sha256 = stored.sha256 ?? (await digestObject(to.store, to.bucket, toKey)).sha256;
  return { ...stored, sha256 };
}

/**
 * Runs `work` on every item of `items` with at most `limit` in flight. The first error stops
 * new work; the call rejects with it once the work in flight has finished.
 */
export async function forEachLimit<T>(
  items: AsyncIterable<T>,
  limit: number,
  work: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const iterator = items[Symbol.asyncIterator]();
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed) {
      signal?.throwIfAborted();
      const next = await iterator.next();
      if (next.done === true) return;
      try {
        await work(next.value);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  // every worker settles before the first error is thrown: a caller that cleans up after a
  // failure must not race copies still in flight
  const outcomes = await Promise.allSettled(Array.from({ length: limit }, worker));
  const failure = outcomes.find((o) => o.status === 'rejected');
  if (failure) throw failure.reason;
}

export interface DocumentCopyOptions {
  source: Location;
  destination: Location;
  excluded: (key: string) => boolean;
  concurrency: number;
  progress: ProgressTracker;
  onEntry: (entry: DocumentEntry) => Promise<void>;
  signal?: AbortSignal | undefined;
}

export interface DocumentCopyResult {
  objectCount: number;
  totalSize: number;
  excludedCount: number;
  excludedSize: number;
}

export async function backupDocuments(options: DocumentCopyOptions): Promise<DocumentCopyResult> {
  // A counting pass for the totals (progress and ETA), beside the copy: listing is faster than
  // copying, so the totals arrive early, and the copy does not wait for them (a listing of 10,000
  // keys took 1.1-1.6 s, 5% of copying them server-side). A failed count only leaves the totals
  // unknown: the copy lists the same keys and fails on its own if the listing does.
  const counting = countObjects(options.source, options.excluded).then((totals) => {
    options.progress.setTotals(totals.objects, totals.bytes);
  });
  try {
    return await copyDocuments(options);
  } finally {
    // a failed copy still waits for the listing: nothing is left in flight
    await counting.catch(() => undefined);
  }
}

async function countObjects(
  source: Location,
  excluded: (key: string) => boolean,
): Promise<{ objects: number; bytes: number }> {
  const totals = { objects: 0, bytes: 0 };
  for await (const object of listAll(source)) {
    if (excluded(object.key)) continue;
    totals.objects++;
    totals.bytes += object.size;
  }
  return totals;
}

async function copyDocuments(options: DocumentCopyOptions): Promise<DocumentCopyResult> {
  const { source, destination, excluded, progress } = options;
  const result: DocumentCopyResult = { objectCount: 0, totalSize: 0, excludedCount: 0, excludedSize: 0 };
  await forEachLimit(
    listAll(source),
    options.concurrency,
    async (object) => {
      if (excluded(object.key)) {
        result.excludedCount++;
        result.excludedSize += object.size;
        return;
      }
      const storedKey = documentKey(destination.prefix, object.key);
      let copied: ObjectInfo & { sha256: string };
      try {
        copied = await copyObject(
          { store: source.store, bucket: source.bucket, key: object.key },
          { store: destination.store, bucket: destination.bucket, key: storedKey },
          object.size,
        );
      } catch (err) {
        if (err instanceof NotFoundError) {
          throw new NotFoundError(
            `document "${object.key}" in bucket "${source.bucket}" disappeared during the backup (deleted while it ran); run the backup again`,
            { cause: err },
          );
        }
        throw err;
      }
      await options.onEntry({
        key: object.key,
        size: copied.size,
        etag: object.etag,
        lastModified: object.lastModified.toISOString(),
        sha256: copied.sha256,
        storedKey,
      });
      result.objectCount++;
      result.totalSize += copied.size;
      progress.add(1, copied.size);
    },
    options.signal,
  );
  return result;
}
