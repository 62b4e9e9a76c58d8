// pg_dump's output → zstd without a fresh buffer per read or per batch (docs/performance.md, P3).
// A child's stdout pipe is read in 64 KiB chunks, each a new buffer: for a 1 GB dump that is a
// gigabyte of allocations, and every few dozen megabytes of them a full garbage collection. So
// pg_dump writes into one end of a Unix socket pair instead, and the other end is read into one
// reused buffer (`onread`); the bytes are copied into a few reused 1 MiB buffers that zstd takes
// whole. Where no socket can be made, the pipe is read as a stream into the same buffers.
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createZstdCompress, constants as zlib } from 'node:zlib';

/**
 * Copies bytes into at most `count` reused buffers of `size` bytes and writes each full one to
 * `target`. A buffer is reused once `target` has consumed it (its write callback: for zlib, when
 * the engine has taken all of that input), so at most `count` buffers ever exist.
 */
class Batcher {
  readonly #target: Writable;
  readonly #size: number;
  readonly #count: number;
  readonly #free: Buffer[] = [];
  #allocated = 0;
  #current: Buffer | undefined;
  #used = 0;
  #waiting: (() => void) | undefined;

  constructor(target: Writable, size: number, count: number) {
    if (!(Number.isInteger(size) && size >= 1 && Number.isInteger(count) && count >= 1)) {
      throw new RangeError(`zstd input buffers: size ${size} and count ${count} must be whole numbers ≥ 1`);
    }
    this.#target = target;
    this.#size = size;
    this.#count = count;
  }

  /** Copies as much of `bytes` as there is room for; fewer than all only while every buffer is in `target`. */
  take(bytes: Uint8Array): number {
    let offset = 0;
    while (offset < bytes.length) {
      if (this.#current === undefined) {
        const next = this.#free.pop() ?? this.#allocate();
        if (next === undefined) return offset;
        this.#current = next;
        this.#used = 0;
      }
      const copied = Math.min(bytes.length - offset, this.#size - this.#used);
      this.#current.set(bytes.subarray(offset, offset + copied), this.#used);
      this.#used += copied;
      offset += copied;
      if (this.#used === this.#size) this.#send(this.#current);
    }
    return offset;
  }

  /** Calls `then` once a buffer is free again (one waiter at a time). */
  whenFree(then: () => void): void {
    this.#waiting = then;
  }

  /** Writes the last, partly filled buffer and ends `target`. */
  finish(): void {
    if (this.#current !== undefined && this.#used > 0)
      this.#target.write(this.#current.subarray(0, this.#used));
    this.#current = undefined;
    this.#target.end();
  }

  /** Forgets a waiter: what it waits for will not happen (the pipeline failed). */
  cancel(): void {
    this.#waiting = undefined;
  }

  #allocate(): Buffer | undefined {
    if (this.#allocated === this.#count) return undefined;
    this.#allocated++;
    return Buffer.allocUnsafeSlow(this.#size);
  }

  #send(full: Buffer): void {
    this.#current = undefined;
    this.#target.write(full, (err) => {
      // a failed target is destroyed with its error; the pipeline into it stops on that
      if (err !== undefined && err !== null) return;
      this.#free.push(full);
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting?.();
    });
  }
}

/** A Writable that hands what it is given to a Batcher; writes wait while every buffer is in use. */
export class Packer extends Writable {
  readonly #batcher: Batcher;
  readonly #onBytes: ((n: number) => void) | undefined;

  constructor(target: Writable, options: { size: number; count: number; onBytes?: (n: number) => void }) {
    super();
    this.#batcher = new Batcher(target, options.size, options.count);
    this.#onBytes = options.onBytes;
  }

  override _write(
    chunk: Buffer | string,
    encoding: BufferEncoding,
    done: (err?: Error | null) => void,
  ): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    this.#onBytes?.(bytes.length);
    this.#copy(bytes, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.#batcher.finish();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#batcher.cancel();
    done(err);
  }

  #copy(bytes: Buffer, done: (err?: Error | null) => void): void {
    const taken = this.#batcher.take(bytes);
    if (taken === bytes.length) done();
    else
      this.#batcher.whenFree(() => {
        this.#copy(bytes.subarray(taken), done);
      });
  }
}

export interface CompressOptions {
  level: number;
  /** zstd's input batches and output buffers, in bytes. */
  chunk: number;
  /** Input buffers in use at once: one being filled, the others queued in zstd. */
  buffers: number;
  onBytes?: (n: number) => void;
}

/** Waits for all, then rejects with the first failure: every stream is torn down by then. */
async function settleAll(steps: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(steps)).find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

function zstdCompressor(options: CompressOptions): ReturnType<typeof createZstdCompress> {
  return createZstdCompress({
    params: { [zlib.ZSTD_c_compressionLevel]: options.level },
    chunkSize: options.chunk,
  });
}

/**
 * `source` through zstd into `sink`; resolves when `sink` has finished. Any failure destroys every
 * stream (the source too, so a child process writing it gets EPIPE) and rejects.
 */
export async function compressZstd(
  source: Readable,
  sink: Writable,
  options: CompressOptions,
): Promise<void> {
  const zstd = zstdCompressor(options);
  const packer = new Packer(zstd, {
    size: options.chunk,
    count: options.buffers,
    ...(options.onBytes === undefined ? {} : { onBytes: options.onBytes }),
  });
  await settleAll([
    pipeline(source, packer).catch((err: unknown) => {
      zstd.destroy(err as Error);
      throw err;
    }),
    pipeline(zstd, sink).catch((err: unknown) => {
      packer.destroy(err as Error);
      source.destroy(err as Error);
      throw err;
    }),
  ]);
}

/**
 * The reading end of a socket pair, read into one reused buffer: `compress` pipes what arrives
 * through zstd. Until `compress` is called, reads wait (the socket starts paused).
 */
export class SocketSource {
  readonly socket: Socket;
  #deliver: (n: number, buffer: Uint8Array) => boolean = () => false;

  constructor(
    socket: (onread: { buffer: Uint8Array; callback: (n: number, b: Uint8Array) => boolean }) => Socket,
    readSize: number,
  ) {
    this.socket = socket({
      buffer: Buffer.allocUnsafeSlow(readSize),
      callback: (n, b) => this.#deliver(n, b),
    });
  }

  /** Like `compressZstd`, from the socket. */
  async compress(sink: Writable, options: CompressOptions): Promise<void> {
    const { socket } = this;
    const zstd = zstdCompressor(options);
    const batcher = new Batcher(zstd, options.chunk, options.buffers);
    // what a read left in the socket's buffer while every batch buffer was in zstd (reads wait)
    let rest: Uint8Array | undefined;
    const drain = (): void => {
      if (rest === undefined) return;
      const taken = batcher.take(rest);
      if (taken < rest.length) {
        rest = rest.subarray(taken);
        batcher.whenFree(drain);
        return;
      }
      rest = undefined;
      socket.resume();
    };
    this.#deliver = (n, buffer) => {
      options.onBytes?.(n);
      const bytes = buffer.subarray(0, n);
      const taken = batcher.take(bytes);
      if (taken === n) return true;
      // paused until zstd frees a buffer: the socket reads nothing into `buffer` meanwhile
      rest = bytes.subarray(taken);
      batcher.whenFree(drain);
      return false;
    };
    const reading = new Promise<void>((resolve, reject) => {
      socket.once('end', () => {
        batcher.finish();
        resolve();
      });
      socket.on('error', reject);
      socket.once('close', () => {
        reject(new Error('the socket closed before the end of the data'));
      });
    });
    socket.resume();
    await settleAll([
      reading.catch((err: unknown) => {
        batcher.cancel();
        zstd.destroy(err as Error);
        throw err;
      }),
      pipeline(zstd, sink).catch((err: unknown) => {
        batcher.cancel();
        socket.destroy(err as Error);
        throw err;
      }),
    ]);
  }
}

/**
 * A connected pair of Unix sockets, through a listening socket in a new private directory that is
 * gone when this returns: `writer` for a child process's stdout (close this process's copy once
 * the child has it), `reader` read into one reused buffer of `readSize` bytes.
 */
export async function socketPair(readSize: number): Promise<{ reader: SocketSource; writer: Socket }> {
  // mkdtemp makes the directory 0700: no other user can connect meanwhile
  const dir = await mkdtemp(join(tmpdir(), 'lc2-dump-'));
  const server: Server = createServer({ pauseOnConnect: true });
  try {
    server.listen(join(dir, 's'));
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const reader = new SocketSource(
      (onread) => new Socket({ onread }).connect({ path: join(dir, 's') }).pause(),
      readSize,
    );
    await Promise.race([
      once(reader.socket, 'connect'),
      once(reader.socket, 'error').then(([err]) => Promise.reject(err as Error)),
    ]);
    const [writer] = await accepted;
    return { reader, writer };
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
