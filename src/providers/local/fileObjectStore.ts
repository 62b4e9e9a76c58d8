// An ObjectStore on a local directory (`file:///some/root`), for laptops and standalone runs.
//
// Layout under the root (one directory per bucket):
//
//   <bucket>/docs/report.pdf%          the bytes of key `docs/report.pdf`
//   <bucket>/.lc2-meta/docs/report.pdf%  JSON sidecar: size, ETag (MD5), SHA-256, identity
//   <bucket>/.lc2-tmp/                 writes in progress, renamed into place when complete
//
// Object files end in "%" and directories never do: S3 lets `a/b` and `a/b/c` both be keys,
// which a plain path mapping cannot hold (`a/b` would have to be a file and a directory). So that
// the marker stays unambiguous, "%" in a key is stored as "%25", and a leading "." as "%2E" —
// which also keeps every hidden name in a bucket directory ours.
//
// The sidecar is written before the data is renamed into place and records the data file's
// inode, size and mtime; a sidecar that does not match its data file (a crash between the two
// renames, a concurrent writer, a hand edit) is never trusted: the file is re-hashed instead.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { constants, createWriteStream, type Dirent, type Stats } from 'node:fs';
import {
  copyFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isRetryable, NotFoundError, RetryableError, ValidationError } from '../../errors/index.ts';
import type { CopyOptions, ListPage, ObjectDigest, ObjectInfo, ObjectStore, PutOptions } from '../types.ts';

const tmpDirName = '.lc2-tmp';
const metaDirName = '.lc2-meta';
const objectMarker = '%';
const defaultListLimit = 1000;
/**
 * Read chunk size of object streams (`get`): 1 MiB instead of the stream default (64 KiB) takes
 * SHA-256 of a cached 1 GiB file from about 1.4 s to 0.95 s (openssl: 0.8-1.0 s), because
 * per-chunk costs (a thread-pool round trip, a Buffer, a hash update) are 16× fewer.
 * Measured in bench/ (P5), see docs/performance.md.
 */
const readChunk = 1024 * 1024;
/**
 * Size of each of the two buffers a hash read (`digest`, re-hashing a file) fills in turn: one is
 * read into while the other is hashed. Reusing them instead of a fresh Buffer per chunk (the
 * stream path) takes SHA-256 of a cached 1 GiB file from about 1.3 to 1.05 CPU-s (P5,
 * docs/performance.md).
 */
const hashBuffer = 1024 * 1024;
const maxNameBytes = 255;
// a rename can race with a delete pruning the (then empty) parent directory
const publishAttempts = 5;

export interface FileObjectStoreOptions {
  /**
   * fsync every object file and its directory before `put`/`copy` resolve (default true), so a
   * reported success survives a power loss. Tests on throwaway directories may turn it off.
   */
  durable?: boolean;
}

interface Sidecar {
  size: number;
  etag: string;
  sha256: string;
  /** Identity of the data file the hashes describe; a mismatch means the sidecar is stale. */
  ino: number;
  mtimeMs: number;
  contentType?: string | undefined;
}

interface Hashes {
  size: number;
  etag: string;
  sha256: string;
}

interface ObjectPaths {
  key: string;
  data: string;
  meta: string;
  /** The bucket's directory for writes in progress (same file system, so rename is atomic). */
  tmpDir: string;
  /** `file:///root/bucket/key`, for messages. */
  url: string;
}

function encodeSegment(segment: string): string {
  return segment.replaceAll('%', '%25').replace(/^\./, '%2E');
}

/** The key segment a directory entry stands for; undefined for names this store did not write. */
function decodeSegment(name: string): string | undefined {
  const segment = name.replace(/%(25|2E)/g, (_, hex) => (hex === '25' ? '%' : '.'));
  return encodeSegment(segment) === name ? segment : undefined;
}

/**
 * Order of the keys' UTF-8 bytes (S3's order), without encoding them: UTF-16 order agrees except
 * where a surrogate (a code point above U+FFFF) meets U+E000..U+FFFF, which the shift fixes.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

function utf8Rank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isMissing(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Wraps a file-system failure in a message that names the object; transient ones are retryable. */
function fsError(err: unknown, action: string, url: string): Error {
  const code = errnoCode(err);
  const reason = err instanceof Error ? err.message : String(err);
  if (err instanceof NotFoundError || err instanceof ValidationError || err instanceof RetryableError)
    return err;
  // EMFILE and friends pass; a reset connection can be the source stream's, which a retry cures
  if (code === 'EMFILE' || code === 'ENFILE' || code === 'EAGAIN' || code === 'EBUSY' || isRetryable(err)) {
    return new RetryableError(`${action} ${url} failed: ${reason}; retry later`, { cause: err });
  }
  const hint =
    code === 'ENOSPC' ? 'free disk space' : code === 'EACCES' || code === 'EPERM' ? 'check permissions' : '';
  return new Error(`${action} ${url} failed: ${reason}${hint === '' ? '' : `; ${hint}`}`, { cause: err });
}

class HashingTransform extends Transform {
  readonly #md5: Hash = createHash('md5');
  readonly #sha256: Hash = createHash('sha256');
  size = 0;

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.#md5.update(bytes);
    this.#sha256.update(bytes);
    this.size += bytes.length;
    callback(null, bytes);
  }

  hashes(): Hashes {
    return { size: this.size, etag: this.#md5.digest('hex'), sha256: this.#sha256.digest('hex') };
  }
}

function sameFile(meta: Sidecar, st: Stats): boolean {
  return meta.ino === st.ino && meta.size === st.size && meta.mtimeMs === st.mtimeMs;
}

async function readSidecar(path: string): Promise<Sidecar | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Sidecar;
  } catch {
    // missing or torn: the caller re-hashes the data file
    return undefined;
  }
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class FileObjectStore implements ObjectStore {
  readonly name: string;
  readonly root: string;
  readonly #durable: boolean;
  readonly #listings = new ListingCache();

  /** `root` is a directory path or a `file://` URL; it is created by the first createBucket. */
  constructor(root: string | URL, options: FileObjectStoreOptions = {}) {
    this.root = resolve(typeof root === 'string' && !root.startsWith('file:') ? root : fileURLToPath(root));
    this.name = pathToFileURL(this.root).href;
    this.#durable = options.durable ?? true;
  }

  async bucketExists(bucket: string): Promise<boolean> {
    const dir = this.#bucketDir(bucket);
    try {
      return (await stat(dir)).isDirectory();
    } catch (err) {
      if (isMissing(err)) return false;
      throw fsError(err, 'checking bucket', this.#bucketUrl(bucket));
    }
  }

  async createBucket(bucket: string): Promise<void> {
    const dir = this.#bucketDir(bucket);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw fsError(err, 'creating bucket', this.#bucketUrl(bucket));
    }
  }

  async list(
    bucket: string,
    prefix: string,
    options: { token?: string | undefined; limit?: number | undefined } = {},
  ): Promise<ListPage> {
    await this.#requireBucket(bucket, 'list');
    const limit = Math.max(1, options.limit ?? defaultListLimit);
    const keys: string[] = [];
    let more = false;
    try {
      for await (const key of this.#walkPrefix(bucket, prefix, options.token)) {
        if (keys.length === limit) {
          more = true;
          break;
        }
        keys.push(key);
      }
    } catch (err) {
      throw fsError(err, 'listing', `${this.#bucketUrl(bucket)}/${prefix}`);
    }
    const infos = await Promise.all(keys.map((key) => this.#info(bucket, key)));
    return {
      // an object deleted since the walk saw it is simply left out
      objects: infos.filter((i) => i !== undefined),
      nextToken: more ? keys.at(-1) : undefined,
    };
  }

  /** Undefined for a missing key and for a missing bucket, as S3's HEAD cannot tell them apart. */
  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    this.#paths(bucket, key);
    return this.#info(bucket, key);
  }

  async get(bucket: string, key: string): Promise<Readable> {
    // open now, so a missing key fails here and the stream reads this version even if the key is
    // overwritten while the caller reads
    const handle = await this.#openData(bucket, key);
    return handle.createReadStream({ highWaterMark: readChunk });
  }

  /** SHA-256 of the object's bytes as read now (never its sidecar's), in two reused buffers. */
  async digest(bucket: string, key: string): Promise<ObjectDigest> {
    const handle = await this.#openData(bucket, key);
    try {
      const sha256 = createHash('sha256');
      const size = await hashFrom(handle, [sha256]);
      return { size, sha256: sha256.digest('hex') };
    } catch (err) {
      throw fsError(err, 'hashing', `${this.#bucketUrl(bucket)}/${key}`);
    } finally {
      await handle.close();
    }
  }

  async put(
    bucket: string,
    key: string,
    body: Readable | Buffer,
    options: PutOptions = {},
  ): Promise<ObjectInfo> {
    let tmp: string | undefined;
    try {
      const paths = this.#paths(bucket, key);
      await this.#requireBucket(bucket, 'write to');
      tmp = await tmpPath(paths);
      const hashes = await this.#write(tmp, body);
      if (options.size !== undefined && options.size !== hashes.size) {
        throw new ValidationError(
          `put ${paths.url}: the body has ${hashes.size} bytes but the caller declared ${options.size}; nothing was stored`,
        );
      }
      return await this.#publish(tmp, paths, hashes, options.contentType);
    } catch (err) {
      // the caller's pipeline into the body must not wait forever on a put that gave up
      if (!Buffer.isBuffer(body)) body.destroy();
      throw fsError(err, 'writing', `${this.#bucketUrl(bucket)}/${key}`);
    } finally {
      if (tmp !== undefined) await rm(tmp, { force: true });
    }
  }

  // the size in CopyOptions only matters to stores that copy in parts
  // eslint-disable-next-line max-params -- the ObjectStore signature
  async copy(
    srcBucket: string,
    srcKey: string,
    dstBucket: string,
    dstKey: string,
    // eslint-disable-next-line @typescript-eslint/no-unused-vars -- the ObjectStore signature
    _options?: CopyOptions,
  ): Promise<ObjectInfo> {
    const src = this.#paths(srcBucket, srcKey);
    const dst = this.#paths(dstBucket, dstKey);
    await this.#requireBucket(srcBucket, 'copy from');
    await this.#requireBucket(dstBucket, 'copy to');
    const tmp = await tmpPath(dst);
    try {
      const { hashes, contentType } = await this.#copyData(src, tmp);
      return await this.#publish(tmp, dst, hashes, contentType);
    } catch (err) {
      throw fsError(err, `copying ${src.url} to`, dst.url);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async delete(bucket: string, key: string): Promise<void> {
    const paths = this.#paths(bucket, key);
    await this.#requireBucket(bucket, 'delete from');
    try {
      await rm(paths.data, { force: true });
      await rm(paths.meta, { force: true });
    } catch (err) {
      throw fsError(err, 'deleting', paths.url);
    }
    const bucketDir = this.#bucketDir(bucket);
    await pruneEmptyDirs(dirname(paths.data), bucketDir);
    await pruneEmptyDirs(dirname(paths.meta), join(bucketDir, metaDirName));
  }

  // --- paths -----------------------------------------------------------------------------------

  #bucketDir(bucket: string): string {
    if (
      !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(bucket) ||
      bucket.length > maxNameBytes ||
      bucket.includes('..')
    ) {
      throw new ValidationError(
        `bucket name "${bucket}" is not valid for ${this.name}: use letters, digits, ".", "_" and "-", starting with a letter or digit`,
      );
    }
    return join(this.root, bucket);
  }

  #bucketUrl(bucket: string): string {
    return `${this.name.replace(/\/$/, '')}/${bucket}`;
  }

  /** Validates the key and maps it under the bucket directory; it can never leave it. */
  #paths(bucket: string, key: string): ObjectPaths {
    const bucketDir = this.#bucketDir(bucket);
    const url = `${this.#bucketUrl(bucket)}/${key}`;
    const names = keyToNames(key, url);
    const data = join(bucketDir, ...names);
    // defence in depth: the segment checks above already rule out "..", "/" and empty names
    if (!data.startsWith(bucketDir + sep)) {
      throw new ValidationError(`key "${key}" would leave bucket directory ${bucketDir}; choose another key`);
    }
    return {
      key,
      data,
      meta: join(bucketDir, metaDirName, ...names),
      tmpDir: join(bucketDir, tmpDirName),
      url,
    };
  }

  /** Opens an object's data file; NotFoundError naming the object (or its bucket) when missing. */
  async #openData(bucket: string, key: string): Promise<FileHandle> {
    const paths = this.#paths(bucket, key);
    try {
      return await open(paths.data, 'r');
    } catch (err) {
      if (!isMissing(err)) throw fsError(err, 'reading', paths.url);
      await this.#requireBucket(bucket, 'read from');
      throw new NotFoundError(
        `object ${paths.url} does not exist; check the key (list the bucket to see keys)`,
      );
    }
  }

  async #requireBucket(bucket: string, action: string): Promise<void> {
    if (!(await this.bucketExists(bucket))) {
      throw new NotFoundError(
        `cannot ${action} bucket ${this.#bucketUrl(bucket)}: it does not exist; create it first (createBucket)`,
      );
    }
  }

  // --- writing ---------------------------------------------------------------------------------

  async #write(tmp: string, body: Readable | Buffer): Promise<Hashes> {
    if (Buffer.isBuffer(body)) {
      await writeFile(tmp, body, { flush: this.#durable });
      return {
        size: body.length,
        etag: createHash('md5').update(body).digest('hex'),
        sha256: createHash('sha256').update(body).digest('hex'),
      };
    }
    const hasher = new HashingTransform();
    await pipeline(body, hasher, createWriteStream(tmp, { flush: this.#durable }));
    return hasher.hashes();
  }

  /** Copies the source's bytes to `tmp`; hashes come from its sidecar when it is current. */
  async #copyData(
    src: ObjectPaths,
    tmp: string,
  ): Promise<{ hashes: Hashes; contentType: string | undefined }> {
    let before: Stats;
    try {
      before = await stat(src.data);
    } catch (err) {
      if (!isMissing(err)) throw err;
      throw new NotFoundError(`copy source ${src.url} does not exist; list the bucket to find the key`);
    }
    const meta = await readSidecar(src.meta);
    // FICLONE shares blocks on file systems that can (btrfs, XFS) and copies elsewhere
    await copyFile(src.data, tmp, constants.COPYFILE_FICLONE);
    if (this.#durable) await syncPath(tmp);
    const after = await stat(src.data).catch(() => undefined);
    // the source is replaced only by rename, never edited in place: the same identity before and
    // after the copy means the copy holds exactly the bytes the sidecar describes
    if (meta && sameFile(meta, before) && after && sameFile(meta, after)) {
      return { hashes: meta, contentType: meta.contentType };
    }
    return { hashes: await hashFile(tmp), contentType: meta?.contentType };
  }

  /** Makes a complete temp file visible under the key: sidecar first, then the data. */
  async #publish(
    tmp: string,
    paths: ObjectPaths,
    hashes: Hashes,
    contentType: string | undefined,
  ): Promise<ObjectInfo> {
    const st = await stat(tmp);
    const meta: Sidecar = { ...pickHashes(hashes), ino: st.ino, mtimeMs: st.mtimeMs, contentType };
    const metaTmp = `${tmp}.meta`;
    try {
      await writeFile(metaTmp, JSON.stringify(meta), { flush: this.#durable });
      await renameInto(metaTmp, paths.meta);
      await renameInto(tmp, paths.data);
    } finally {
      await rm(metaTmp, { force: true });
    }
    if (this.#durable) await syncPath(dirname(paths.data));
    return {
      key: paths.key,
      size: st.size,
      etag: hashes.etag,
      sha256: hashes.sha256,
      lastModified: st.mtime,
    };
  }

  // --- reading ---------------------------------------------------------------------------------

  /** Size, ETag and SHA-256 of an object, from its sidecar when current, else by re-hashing. */
  async #info(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    const paths = this.#paths(bucket, key);
    let st: Stats;
    try {
      st = await stat(paths.data);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw fsError(err, 'reading', paths.url);
    }
    const meta = await readSidecar(paths.meta);
    if (meta && sameFile(meta, st)) {
      return { key, size: st.size, etag: meta.etag, sha256: meta.sha256, lastModified: st.mtime };
    }
    try {
      return await repair(paths, meta?.contentType);
    } catch (err) {
      throw fsError(err, 'reading', paths.url);
    }
  }

  /**
   * Keys under `prefix` after `after`, in byte order, from a sorted depth-first walk that starts
   * at the deepest directory the prefix names and skips whole subtrees before the token.
   */
  async *#walkPrefix(bucket: string, prefix: string, after: string | undefined): AsyncGenerator<string> {
    const cut = prefix.lastIndexOf('/');
    const dirKey = cut < 0 ? '' : prefix.slice(0, cut + 1);
    const segments = dirKey === '' ? [] : dirKey.slice(0, -1).split('/');
    // a prefix whose directory part no valid key can have matches nothing
    if (segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\0'))) return;
    const dir = join(this.#bucketDir(bucket), ...segments.map(encodeSegment));
    yield* walk(this.#listings, dir, dirKey, { prefix, after });
  }
}

interface WalkBounds {
  prefix: string;
  after: string | undefined;
}

interface WalkItem {
  key: string;
  name: string;
  dir: boolean;
}

function walkItem(entry: Dirent, keyPrefix: string): WalkItem | undefined {
  // hidden names are this store's own (.lc2-tmp, .lc2-meta): data names never start with "."
  if (entry.name.startsWith('.')) return undefined;
  let segment: string | undefined;
  let key: string;
  if (entry.isDirectory()) {
    segment = decodeSegment(entry.name);
    key = `${keyPrefix}${segment}/`;
  } else if (entry.isFile() && entry.name.endsWith(objectMarker)) {
    segment = decodeSegment(entry.name.slice(0, -objectMarker.length));
    key = `${keyPrefix}${segment}`;
  } else {
    return undefined;
  }
  if (segment === undefined) return undefined;
  return { key, name: entry.name, dir: entry.isDirectory() };
}

/** Whether an item holds keys under the prefix and after the token. */
function inRange(item: WalkItem, bounds: WalkBounds): boolean {
  const { prefix, after } = bounds;
  if (!item.dir) {
    return item.key.startsWith(prefix) && (after === undefined || compareKeys(item.key, after) > 0);
  }
  // a directory item's key is its subtree's common prefix, ending in "/": the subtree can hold
  // keys under the prefix if either starts with the other, and keys after the token unless the
  // whole subtree sorts before it
  if (!item.key.startsWith(prefix) && !prefix.startsWith(item.key)) return false;
  return after === undefined || after.startsWith(item.key) || compareKeys(item.key, after) > 0;
}

const wideDirectory = 1000;
const cacheMaxItems = 1_000_000;
/** How long a directory must have been unchanged before its listing may be reused. */
const quietMs = 2000;

interface CachedListing {
  ino: bigint;
  mtimeNs: bigint;
  items: WalkItem[];
}

/**
 * Sorted listings of wide directories, reused across pages: without it, paging through a
 * directory of n entries re-reads and re-sorts all n for every page (quadratic). A listing is
 * reused only while the directory's inode and mtime are unchanged, and only if the directory had
 * been quiet for `quietMs` before it was read — so a change right after the read, within the
 * same coarse timestamp tick, cannot hide behind an equal mtime.
 */
export class ListingCache {
  readonly #entries = new Map<string, CachedListing>();
  #items = 0;

  async sorted(dir: string, keyPrefix: string): Promise<WalkItem[] | undefined> {
    let st;
    try {
      st = await stat(dir, { bigint: true });
    } catch (err) {
      // a directory removed (emptied) since its parent was read holds no keys
      if (isMissing(err)) return undefined;
      throw err;
    }
    const cached = this.#entries.get(dir);
    if (cached && cached.ino === st.ino && cached.mtimeNs === st.mtimeNs) {
      // most recently used last, for eviction
      this.#entries.delete(dir);
      this.#entries.set(dir, cached);
      return cached.items;
    }
    const readAt = BigInt(Date.now()) * 1_000_000n;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    const items = entries
      .map((entry) => walkItem(entry, keyPrefix))
      .filter((item) => item !== undefined)
      // "a/" sorts after "a-b" and "a": directories sort as their keys' common prefix
      .sort((a, b) => compareKeys(a.key, b.key));
    const quiet = readAt - st.mtimeNs > BigInt(quietMs) * 1_000_000n;
    if (items.length >= wideDirectory && quiet)
      this.#remember(dir, { ino: st.ino, mtimeNs: st.mtimeNs, items });
    return items;
  }

  #remember(dir: string, listing: CachedListing): void {
    const old = this.#entries.get(dir);
    if (old) this.#items -= old.items.length;
    this.#entries.set(dir, listing);
    this.#items += listing.items.length;
    for (const [key, entry] of this.#entries) {
      if (this.#items <= cacheMaxItems || key === dir) break;
      this.#entries.delete(key);
      this.#items -= entry.items.length;
    }
  }
}

/** Index of the first item that can hold keys after `after` (items sorted). */
function firstAfter(items: WalkItem[], after: string | undefined): number {
  if (after === undefined) return 0;
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys((items[mid] as WalkItem).key, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  // the directory the token lies in sorts before the token but still holds later keys
  const before = items[lo - 1];
  return before?.dir === true && after.startsWith(before.key) ? lo - 1 : lo;
}

async function* walk(
  cache: ListingCache,
  dir: string,
  keyPrefix: string,
  bounds: WalkBounds,
): AsyncGenerator<string> {
  const items = await cache.sorted(dir, keyPrefix);
  if (items === undefined) return;
  for (let i = firstAfter(items, bounds.after); i < items.length; i++) {
    const item = items[i] as WalkItem;
    if (!inRange(item, bounds)) {
      // sorted: once past the prefix, nothing later in this directory matches it
      if (compareKeys(item.key, bounds.prefix) > 0 && !bounds.prefix.startsWith(item.key)) return;
      continue;
    }
    if (item.dir) yield* walk(cache, join(dir, item.name), item.key, bounds);
    else yield item.key;
  }
}

/** The file-system names of a key's segments; throws for keys that cannot map safely. */
function keyToNames(key: string, url: string): string[] {
  const fail = (why: string): never => {
    throw new ValidationError(`key ${url} cannot be stored in a file store: ${why}; rename the object`);
  };
  if (key === '') fail('the key is empty');
  if (key.includes('\0')) fail('it contains a NUL character');
  const segments = key.split('/');
  if (segments.some((s) => s === '')) fail('it has an empty path segment (leading, trailing or double "/")');
  if (segments.some((s) => s === '.' || s === '..')) fail('it has a "." or ".." path segment');
  const names = segments.map((s, i) => encodeSegment(s) + (i === segments.length - 1 ? objectMarker : ''));
  if (names.some((n) => Buffer.byteLength(n, 'utf8') > maxNameBytes)) {
    fail(`a path segment is longer than ${maxNameBytes - 1} bytes`);
  }
  return names;
}

function pickHashes(hashes: Hashes): Hashes {
  return { size: hashes.size, etag: hashes.etag, sha256: hashes.sha256 };
}

/**
 * Renames into `target`, creating its directory (again, if a concurrent delete pruned it). A
 * recursive mkdir fails with ENOENT too when a prune removes a parent it has just created.
 */
async function renameInto(from: string, target: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await mkdir(dirname(target), { recursive: true });
      await rename(from, target);
      return;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' || attempt >= publishAttempts) throw err;
    }
  }
}

/** Removes now-empty directories from `dir` up to (not including) `stopAt`. */
async function pruneEmptyDirs(dir: string, stopAt: string): Promise<void> {
  for (let current = dir; current.startsWith(stopAt + sep); current = dirname(current)) {
    try {
      await rmdir(current);
    } catch {
      // not empty (or already gone): the directories above are not empty either
      return;
    }
  }
}

async function tmpPath(paths: ObjectPaths): Promise<string> {
  await mkdir(paths.tmpDir, { recursive: true });
  return join(paths.tmpDir, randomUUID());
}

/**
 * Feeds an open file's bytes, from its start to its end, to `hashes` and returns how many there
 * were; the handle stays open. Two buffers take turns: the next read fills one while the other is
 * hashed. `update` is synchronous, so a buffer is done with before the read that refills it starts.
 */
async function hashFrom(handle: FileHandle, hashes: Hash[]): Promise<number> {
  const buffers = [Buffer.allocUnsafe(hashBuffer), Buffer.allocUnsafe(hashBuffer)] as const;
  let position = 0;
  let current: 0 | 1 = 0;
  let reading = handle.read(buffers[0], 0, hashBuffer, 0);
  for (;;) {
    // a read may return less than asked before the end: only 0 bytes means the end
    const { bytesRead } = await reading;
    if (bytesRead === 0) return position;
    const filled = buffers[current];
    position += bytesRead;
    current = current === 0 ? 1 : 0;
    reading = handle.read(buffers[current], 0, hashBuffer, position);
    const bytes = bytesRead === hashBuffer ? filled : filled.subarray(0, bytesRead);
    for (const hash of hashes) hash.update(bytes);
  }
}

/** Hashes an open file from its start; the handle stays open. */
async function hashHandle(handle: FileHandle): Promise<Hashes> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const size = await hashFrom(handle, [md5, sha256]);
  return { size, etag: md5.digest('hex'), sha256: sha256.digest('hex') };
}

async function hashFile(path: string): Promise<Hashes> {
  const handle = await open(path, 'r');
  try {
    return await hashHandle(handle);
  } finally {
    await handle.close();
  }
}

/**
 * Re-hashes a data file whose sidecar is missing or stale, and rewrites the sidecar for the next
 * reader. The identity recorded is that of the file actually hashed (held open throughout).
 */
async function repair(paths: ObjectPaths, contentType: string | undefined): Promise<ObjectInfo | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(paths.data, 'r');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  try {
    const st = await handle.stat();
    const hashes = await hashHandle(handle);
    const meta: Sidecar = { ...hashes, ino: st.ino, mtimeMs: st.mtimeMs, contentType };
    const tmp = join(paths.tmpDir, `${randomUUID()}.meta`);
    try {
      await mkdir(paths.tmpDir, { recursive: true });
      await writeFile(tmp, JSON.stringify(meta));
      await renameInto(tmp, paths.meta);
    } catch {
      // best effort: the answer below is right either way, the next reader re-hashes again
      await rm(tmp, { force: true });
    }
    return {
      key: paths.key,
      size: hashes.size,
      etag: hashes.etag,
      sha256: hashes.sha256,
      lastModified: st.mtime,
    };
  } finally {
    await handle.close();
  }
}
