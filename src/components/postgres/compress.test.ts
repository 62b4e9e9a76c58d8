import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { zstdDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressZstd, Packer, socketPair, type CompressOptions } from './compress.ts';

/** Compressible, with some randomness: rows that repeat with a changing number. */
function sample(size: number): Buffer {
  const rows: Buffer[] = [];
  let total = 0;
  for (let i = 0; total < size; i++) {
    const row = Buffer.from(`${i}\tdocument ${i}\t${randomBytes(4).toString('hex')}\n`);
    rows.push(row);
    total += row.length;
  }
  return Buffer.concat(rows).subarray(0, size);
}

/** Chunks of varying sizes, like pipe reads. */
function chunked(bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length] ?? 1;
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** A sink that keeps what it gets, slowly (so the zstd side pushes back). */
function collector(delayMs = 0): { sink: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, done) {
      parts.push(Buffer.from(chunk));
      if (delayMs === 0) done();
      else setTimeout(done, delayMs);
    },
  });
  return { sink, bytes: () => Buffer.concat(parts) };
}

const small: CompressOptions = { level: 1, chunk: 4096, buffers: 2 };

describe('compressZstd (a stream through reused buffers)', () => {
  it('round-trips chunks that straddle the buffers, and counts the bytes', async () => {
    const input = sample(300_000);
    const { sink, bytes } = collector(1);
    let counted = 0;
    await compressZstd(Readable.from(chunked(input, [1, 4095, 4097, 10_000, 3])), sink, {
      ...small,
      onBytes: (n) => (counted += n),
    });
    expect(counted).toBe(input.length);
    expect(zstdDecompressSync(bytes()).equals(input)).toBe(true);
  });

  it('compresses an empty stream to a valid empty frame', async () => {
    const { sink, bytes } = collector();
    await compressZstd(Readable.from([]), sink, small);
    expect(zstdDecompressSync(bytes()).length).toBe(0);
  });

  it('a source that fails rejects and destroys the sink', async () => {
    const source = new PassThrough();
    const { sink } = collector();
    const done = compressZstd(source, sink, small);
    source.write(sample(10_000));
    source.destroy(new Error('pg_dump went away'));
    await expect(done).rejects.toThrow('pg_dump went away');
    expect(sink.destroyed).toBe(true);
  });

  it('a sink that fails rejects and destroys the source', async () => {
    const source = new PassThrough();
    const sink = new Writable({
      write(_chunk, _enc, done) {
        done(new Error('upload refused'));
      },
    });
    const done = compressZstd(source, sink, small);
    // more than zstd keeps before its first output
    source.write(sample(1_000_000));
    await expect(done).rejects.toThrow('upload refused');
    expect(source.destroyed).toBe(true);
  });

  it('refuses buffer sizes that cannot work', () => {
    expect(() => new Packer(new PassThrough(), { size: 0, count: 1 })).toThrow(/must be whole numbers/);
    expect(() => new Packer(new PassThrough(), { size: 1024, count: 0.5 })).toThrow(/must be whole numbers/);
  });
});

describe('socketPair (a child writes one end, the other is read into one reused buffer)', () => {
  it("round-trips a child process's output", async () => {
    const input = sample(2_000_000);
    // small read and batch buffers, so reads often find every buffer in zstd and wait
    const { reader, writer } = await socketPair(1000);
    const child = spawn('cat', [], { stdio: ['pipe', writer, 'inherit'] });
    writer.destroy();
    child.stdin.end(input);
    const { sink, bytes } = collector(1);
    let counted = 0;
    await reader.compress(sink, { ...small, onBytes: (n) => (counted += n) });
    expect(counted).toBe(input.length);
    expect(zstdDecompressSync(bytes()).equals(input)).toBe(true);
  });

  it('a sink that fails rejects and closes the socket, so the writer gets an error', async () => {
    const { reader, writer } = await socketPair(1000);
    const child = spawn('sh', ['-c', 'head -c 50000000 /dev/zero'], { stdio: ['ignore', writer, 'pipe'] });
    writer.destroy();
    const exited = new Promise<number | null>((resolve) => {
      child.on('close', resolve);
    });
    const sink = new Writable({
      write(_chunk, _enc, done) {
        done(new Error('upload refused'));
      },
    });
    await expect(reader.compress(sink, small)).rejects.toThrow('upload refused');
    expect(reader.socket.destroyed).toBe(true);
    // head cannot write any more: it fails instead of blocking forever
    expect(await exited).not.toBe(0);
  });
});
