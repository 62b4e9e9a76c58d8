// Restoring a dump while it still downloads (docs/performance.md, P4). `pg_restore -j` needs the
// whole archive in a seekable file, and a dump written to a pipe has no data positions, so a
// plain restore waits for download and decompression before its first row. Instead, as the
// decompressed archive grows in the scratch file:
//   1. once its table of contents has arrived, `pg_restore --section=pre-data` creates the schema
//      from a copy of the header and TOC alone (no data is read for that section);
//   2. the data blocks are walked as they land (archive.ts), each handed whole to one of `jobs`
//      loaders: a `pg_restore -L <table data>` reading the TOC and then, in TOC order, the blocks
//      it was given and an empty block for each of the others, from a pipe fed out of the file;
//      a block goes to the loader with the least left to load, so big tables load side by side;
//   3. the caller then runs `pg_restore -j` over the TOC copy for everything else of the data and
//      post-data sections (sequence values, indexes, constraints, materialized views).
// The PostgreSQL tools still do all SQL; this only decides which one reads which bytes. Archives
// this cannot split (another format or version, compressed by pg_dump, large objects) report
// `undefined` and are restored the plain way once the file is whole.
import type { ChildProcessByStdio } from 'node:child_process';
import { open, writeFile, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BlockWalker,
  emptyBlock,
  NeedMoreBytes,
  parseArchiveHead,
  UnsupportedArchive,
  type ArchiveHead,
  type TocEntry,
} from './archive.ts';

export type LoadWhileDownloading = 'auto' | 'always' | 'never';

function onThisMachine(host: string): boolean {
  // a socket directory, a loopback name or address
  return (
    host === '' || host.startsWith('/') || host === 'localhost' || host === '::1' || host.startsWith('127.')
  );
}

/**
 * Whether a restore loads tables while the dump downloads. The split costs about 1 CPU-s per GB
 * on this machine (the walk, and the loaders' input read from the file and written to their
 * pipes; docs/performance.md, P4). A PostgreSQL server elsewhere does not share these cores, so
 * hiding the download behind the load is free; next to a local server on a small machine the
 * server's loading needs those cores (measured on 2 cores: no faster, within the run-to-run
 * spread, for that CPU), so `auto` splits there only with cores to spare beside the `jobs`
 * backends.
 */
export function loadsWhileDownloading(
  setting: LoadWhileDownloading,
  server: { host: string; jobs: number },
  cores = availableParallelism(),
): boolean {
  if (setting !== 'auto') return setting === 'always';
  return !onThisMachine(server.host) || cores >= 2 * server.jobs + 2;
}

/** How often a waiting reader looks at the file again while it grows. */
const pollMs = 2;
/** Reads of the growing file: one buffer for the walk, one per loader. */
const readSize = 1024 * 1024;
/** What is read of the file at first for the header and TOC (doubled until they fit). */
const headRead = 64 * 1024;

export type Loader = ChildProcessByStdio<Writable, null, Readable>;

export interface SplitRestoreOptions {
  /** The file the decompressed archive is being written to. */
  file: string;
  /** Where the TOC copy and the entry lists go (the scratch directory of this restore). */
  dir: string;
  /** Settles when the file is whole (or its writing failed). */
  written: Promise<void>;
  /** Parallel loaders. */
  jobs: number;
  /** Runs `pg_restore <args>` against the new database and settles when it exits. */
  pgRestore: (args: string[]) => Promise<void>;
  /** Starts a `pg_restore <args>` reading the archive from its stdin. */
  startLoader: (args: string[]) => { child: Loader; exited: Promise<void> };
  signal?: AbortSignal | undefined;
}

export interface SplitRestoreResult {
  /** `pg_restore` arguments for what is left: the data and post-data sections but table data. */
  restArgs: string[];
}

/** A file another process is writing: reads wait for its growth until the writing settles. */
class GrowingFile {
  readonly #path: string;
  #handle: FileHandle | undefined;
  #finished = false;
  #failure: Error | undefined;
  size = 0;

  constructor(path: string, written: Promise<void>) {
    this.#path = path;
    written.then(
      () => (this.#finished = true),
      (err: unknown) => (this.#failure = err as Error),
    );
  }

  get finished(): boolean {
    return this.#finished;
  }

  async #open(): Promise<FileHandle | undefined> {
    if (this.#handle !== undefined) return this.#handle;
    try {
      this.#handle = await open(this.#path, 'r');
      return this.#handle;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Waits until the file is longer than `than` or is whole; returns its size then. */
  async grown(than: number, stopped: () => Error | undefined): Promise<number> {
    for (;;) {
      const failure = this.#failure ?? stopped();
      if (failure !== undefined) throw failure;
      // read before the size: a file whole by now has all its bytes in the size read next
      const finished = this.#finished;
      const handle = await this.#open();
      if (handle !== undefined) this.size = (await handle.stat()).size;
      if (this.size > than || finished) return this.size;
      await sleep(pollMs);
    }
  }

  async read(into: Buffer, position: number, length: number): Promise<number> {
    const handle = await this.#open();
    if (handle === undefined) throw new Error(`${this.#path} vanished while being read`);
    const { bytesRead } = await handle.read(into, 0, length, position);
    return bytesRead;
  }

  async close(): Promise<void> {
    await this.#handle?.close();
  }
}

/** Wakes everyone waiting for the walk to move on. */
class Progress {
  #waiters: (() => void)[] = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

interface Block {
  entry: TocEntry;
  loader: number;
  start: number;
  end: number | undefined;
}

/** The walk over the data blocks and the hand-out of each block to a loader. */
class Split {
  readonly #file: GrowingFile;
  readonly #head: ArchiveHead;
  readonly #tableData: TocEntry[];
  readonly #progress = new Progress();
  readonly #blocks: Block[] = [];
  readonly #walker: BlockWalker;
  /** Per loader: the file offset it has been fed up to, within its current block. */
  readonly #fed: number[];
  #failure: Error | undefined;
  readonly #outside: () => Error | undefined;

  /** `tableData`: the TOC's entries with data, in order; `stopped`: a reason to stop from outside. */
  constructor(
    file: GrowingFile,
    head: ArchiveHead,
    split: { tableData: TocEntry[]; jobs: number; stopped: () => Error | undefined },
  ) {
    this.#file = file;
    this.#outside = split.stopped;
    this.#head = head;
    this.#tableData = split.tableData;
    this.#fed = Array.from({ length: split.jobs }, () => 0);
    this.#walker = new BlockWalker(head, {
      start: (dumpId, type, offset) => {
        this.#started(dumpId, type, offset);
      },
      end: (offset) => {
        const block = this.#blocks.at(-1);
        if (block !== undefined) block.end = offset;
      },
    });
  }

  /** Stops the walk and every feed with `err` (the first reason wins). */
  fail(err: Error): void {
    this.#failure ??= err;
    this.#progress.notify();
  }

  readonly #stopped = (): Error | undefined => this.#failure ?? this.#outside();

  #started(dumpId: number, type: number, offset: number): void {
    const entry = this.#tableData[this.#blocks.length];
    if (type !== 1 || entry?.dumpId !== dumpId) {
      throw new Error(
        `data block at offset ${offset} (type ${type}, dump id ${dumpId}) is not the next table data of the table of contents (${entry === undefined ? 'none is left' : `dump id ${entry.dumpId}, ${entry.name}`}); the dump is damaged`,
      );
    }
    this.#blocks.push({ entry, loader: this.#leastBehind(), start: offset, end: undefined });
  }

  /** The loader with the fewest bytes handed to it and not yet fed. */
  #leastBehind(): number {
    const behind = this.#fed.map(() => 0);
    const walked = this.#walker.next;
    for (const block of this.#blocks) {
      const from = Math.max(block.start, this.#fed[block.loader] ?? 0);
      behind[block.loader] = (behind[block.loader] ?? 0) + Math.max(0, (block.end ?? walked) - from);
    }
    return behind.indexOf(Math.min(...behind));
  }

  /** Walks the blocks as the file grows, until the file is whole and walked to its end. */
  async walk(): Promise<void> {
    const buffer = Buffer.allocUnsafe(readSize);
    for (;;) {
      const at = this.#walker.next;
      // a whole read's worth (or the end): one walk per megabyte, not one per write of zstd's
      const size = await this.#file.grown(at + readSize - 1, this.#stopped);
      if (size <= at && this.#file.finished) break;
      const read = await this.#file.read(buffer, at, Math.min(readSize, size - at));
      this.#walker.walk(buffer.subarray(0, read));
      this.#progress.notify();
      // too few bytes for the next header: wait for more than what was there
      if (this.#walker.next === at) {
        if (this.#file.finished) break;
        await this.#file.grown(size, this.#stopped);
      }
    }
    const walked = this.#walker.next;
    if (!this.#walker.atBoundary || walked !== this.#file.size) {
      throw new Error(
        `the dump ends at byte ${this.#file.size} inside a data block (walked to ${walked}); the dump is truncated`,
      );
    }
    if (this.#blocks.length !== this.#tableData.length) {
      const missing = this.#tableData[this.#blocks.length];
      throw new Error(
        `the dump ends before the data of ${missing?.name ?? 'a table'} (${this.#blocks.length} of ${this.#tableData.length} tables' data); the dump is truncated`,
      );
    }
    this.#progress.notify();
  }

  /** The n-th block, once the walk has reached it. */
  async #block(n: number): Promise<Block> {
    for (;;) {
      const failure = this.#stopped();
      if (failure !== undefined) throw failure;
      const block = this.#blocks[n];
      if (block !== undefined) return block;
      await this.#progress.wait();
    }
  }

  /** Where the bytes of `block` known to be in the file end (its end, once walked to). */
  #readable(block: Block): number {
    return block.end ?? Math.min(this.#walker.next, this.#file.size);
  }

  /** Feeds loader `index` its input: the header and TOC, then each table's block or an empty one. */
  async feed(index: number, stdin: Writable, prefix: Buffer): Promise<void> {
    const buffer = Buffer.allocUnsafe(readSize);
    await write(stdin, prefix);
    for (let n = 0; n < this.#tableData.length; n++) {
      const block = await this.#block(n);
      if (block.loader !== index) {
        await write(stdin, emptyBlock(block.entry.dumpId, this.#head.intSize));
        continue;
      }
      let at = block.start;
      this.#fed[index] = at;
      while (block.end === undefined || at < block.end) {
        const failure = this.#stopped();
        if (failure !== undefined) throw failure;
        const until = this.#readable(block);
        if (until <= at) {
          await this.#progress.wait();
          continue;
        }
        const read = await this.#file.read(buffer, at, Math.min(readSize, until - at));
        await write(stdin, buffer.subarray(0, read));
        at += read;
        this.#fed[index] = at;
      }
    }
    stdin.end();
  }
}

function write(stream: Writable, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(bytes, (err) => {
      if (err) reject(err);
      else resolve();
    });
  });
}

/**
 * Reads the header and TOC once they are in the file, with their bytes (`prefix`); undefined for
 * an archive not split here.
 */
async function readHead(
  file: GrowingFile,
  stopped: () => Error | undefined,
): Promise<{ head: ArchiveHead; prefix: Buffer } | undefined> {
  let want = headRead;
  for (;;) {
    const size = await file.grown(want - 1, stopped);
    const bytes = Buffer.allocUnsafe(Math.min(want, size));
    const read = bytes.length === 0 ? 0 : await file.read(bytes, 0, bytes.length);
    try {
      const head = parseArchiveHead(bytes.subarray(0, read));
      return { head, prefix: bytes.subarray(0, head.dataStart) };
    } catch (err) {
      if (err instanceof UnsupportedArchive) return undefined;
      if (!(err instanceof NeedMoreBytes)) throw err;
      // whole and still short: not an archive this can read; pg_restore says what is wrong
      if (file.finished && read >= file.size) return undefined;
      want *= 2;
    }
  }
}

function splittable(head: ArchiveHead): TocEntry[] | undefined {
  if (head.compressed) return undefined;
  // large objects' blocks are framed differently; those archives are restored the plain way
  if (head.entries.some((e) => e.hasData && e.desc !== 'TABLE DATA')) return undefined;
  return head.entries.filter((e) => e.hasData);
}

async function writeList(path: string, entries: TocEntry[]): Promise<string> {
  await writeFile(path, entries.map((e) => `${e.dumpId}\n`).join(''));
  return path;
}

/** Starts a loader fed by `split`; settles when both the feed and the loader are done. */
function load(
  options: SplitRestoreOptions,
  split: Split,
  index: number,
  input: { dataList: string; prefix: Buffer },
): Promise<void> {
  const { child, exited } = options.startLoader(['-L', input.dataList]);
  const fed = split.feed(index, child.stdin, input.prefix).catch((err: unknown) => {
    // a loader left without input would wait forever
    child.kill('SIGKILL');
    throw err;
  });
  return Promise.allSettled([fed, exited]).then(([f, e]) => {
    // a loader that stopped reading leaves a broken pipe: its own exit says why
    if (e.status === 'rejected') {
      split.fail(e.reason as Error);
      throw e.reason;
    }
    if (f.status === 'rejected') throw f.reason;
  });
}

/**
 * Restores the schema and the table data of the archive being written to `options.file` while it
 * grows, and returns the pg_restore arguments for the rest; undefined (having restored nothing)
 * for an archive that is not split this way.
 */
export async function splitRestore(options: SplitRestoreOptions): Promise<SplitRestoreResult | undefined> {
  const file = new GrowingFile(options.file, options.written);
  const jobs = Math.max(1, options.jobs);
  let split: Split | undefined;
  const stopped = (): Error | undefined =>
    options.signal?.aborted === true
      ? new Error(`the restore was stopped: ${String(options.signal.reason)}`)
      : undefined;
  const onAbort = (): void => {
    split?.fail(stopped() ?? new Error('the restore was stopped'));
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let walking: Promise<void> | undefined;
  try {
    const start = await readHead(file, stopped);
    const tableData = start === undefined ? undefined : splittable(start.head);
    if (start === undefined || tableData === undefined) return undefined;
    const { head, prefix } = start;
    split = new Split(file, head, { tableData, jobs, stopped });
    const running = split;
    walking = running.walk();
    walking.catch((err: unknown) => {
      running.fail(err as Error);
    });
    const toc = join(options.dir, 'toc.pgdump');
    await writeFile(toc, prefix);
    const dataList = await writeList(join(options.dir, 'data.list'), tableData);
    const restList = await writeList(
      join(options.dir, 'rest.list'),
      head.entries.filter((e) => !e.hasData),
    );
    await options.pgRestore(['--section=pre-data', toc]);
    const loaders = Array.from({ length: jobs }, (_, index) =>
      load(options, running, index, { dataList, prefix }),
    );
    const results = await Promise.allSettled([walking, ...loaders]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return { restArgs: ['--section=data', '--section=post-data', '-L', restList, toc] };
  } catch (err) {
    split?.fail(err as Error);
    await walking?.catch(() => undefined);
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await file.close();
  }
}
