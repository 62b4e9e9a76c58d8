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
export async function* listAll(
  at: Location,
  pageSize = 1000,
  startToken?: string,
): AsyncGenerator<ObjectInfo> {
  const pageAfter = (token: string | undefined): Promise<ListPage> =>
    at.store.list(at.bucket, at.prefix, { token, limit: pageSize });
  let page = await pageAfter(startToken);
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
  /** Listing pages the count may hand to the copy ahead of it (default 32). */
  sharedPages?: number | undefined;
}

export interface DocumentCopyResult {
  objectCount: number;
  totalSize: number;
  excludedCount: number;
  excludedSize: number;
}

/** Pages the count may read ahead of the copy and hand to it (each up to 1,000 objects). */
const sharedPages = 32;

export async function backupDocuments(options: DocumentCopyOptions): Promise<DocumentCopyResult> {
  // A counting pass for the totals (progress and ETA), beside the copy: listing is faster than
  // copying, so the totals arrive early, and the copy does not wait for them (a listing of 10,000
  // keys took 1.1-1.6 s, 5% of copying them server-side). The pages it reads ahead of the copy
  // are the copy's too, up to `sharedPages`: a source of up to that many pages is listed once,
  // not twice (docs/performance.md, P1b); past that, the copy lists the rest itself. A failed
  // count only leaves the totals unknown: the copy lists on from the last page it was handed and
  // fails on its own if the listing does.
  const share = new SharedListing(options.sharedPages ?? sharedPages);
  const counting = countObjects(options.source, options.excluded, share).then((totals) => {
    options.progress.setTotals(totals.objects, totals.bytes);
  });
  try {
    return await copyDocuments(options, share.objects(options.source));
  } finally {
    // a failed copy still waits for the listing: nothing is left in flight
    await counting.catch(() => undefined);
  }
}

/**
 * The pages one listing (the count's) hands to a second reader (the copy), at most `limit`
 * waiting; once more would wait, it stops handing them on and the reader lists the rest itself,
 * from the last page it was handed, so nothing holds more than `limit` pages.
 */
class SharedListing {
  readonly #limit: number;
  readonly #pages: ListPage[] = [];
  /** sharing: pages are handed on; ended: the last page was; handedOff: the reader lists on. */
  #state: 'sharing' | 'ended' | 'handedOff' = 'sharing';
  /** The token after the last page handed on (undefined: from the start). */
  #resumeToken: string | undefined;
  #wake: (() => void) | undefined;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Hands a page on while sharing and fewer than `limit` wait; else stops sharing. */
  offer(page: ListPage): void {
    if (this.#state !== 'sharing') return;
    if (this.#pages.length >= this.#limit) {
      this.stop();
      return;
    }
    this.#pages.push(page);
    this.#resumeToken = page.nextToken;
    if (page.nextToken === undefined) this.#state = 'ended';
    this.#notify();
  }

  /** No more pages from the listing (it ended, failed or outran the reader). */
  stop(): void {
    if (this.#state === 'sharing') this.#state = 'handedOff';
    this.#notify();
  }

  async *objects(at: Location): AsyncGenerator<ObjectInfo> {
    for (;;) {
      const page = this.#pages.shift();
      if (page !== undefined) {
        yield* page.objects;
        continue;
      }
      if (this.#state === 'ended') return;
      if (this.#state === 'handedOff') {
        yield* listAll(at, 1000, this.#resumeToken);
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

async function countObjects(
  source: Location,
  excluded: (key: string) => boolean,
  share: SharedListing,
): Promise<{ objects: number; bytes: number }> {
  const totals = { objects: 0, bytes: 0 };
  let token: string | undefined;
  try {
    do {
      const page = await source.store.list(source.bucket, source.prefix, { token, limit: 1000 });
      share.offer(page);
      for (const object of page.objects) {
        if (excluded(object.key)) continue;
        totals.objects++;
        totals.bytes += object.size;
      }
      token = page.nextToken;
    } while (token !== undefined);
  } finally {
    share.stop();
  }
  return totals;
}

async function copyDocuments(
  options: DocumentCopyOptions,
  objects: AsyncIterable<ObjectInfo>,
): Promise<DocumentCopyResult> {
  const { source, destination, excluded, progress } = options;
  const result: DocumentCopyResult = { objectCount: 0, totalSize: 0, excludedCount: 0, excludedSize: 0 };
  await forEachLimit(
    objects,
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
