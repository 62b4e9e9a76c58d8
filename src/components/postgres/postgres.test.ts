import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { zstdCompressSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decompressToFile, forgetZstdTool } from './postgres.ts';

let dir: string;
const saved = process.env.LC2_ZSTD;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lc2-decompress-'));
});
afterEach(async () => {
  if (saved === undefined) delete process.env.LC2_ZSTD;
  else process.env.LC2_ZSTD = saved;
  forgetZstdTool();
  await rm(dir, { recursive: true, force: true });
});

/** A dump-like body: compressible rows with some randomness, and a run of zeros. */
function sample(): Buffer {
  const rows: string[] = [];
  for (let i = 0; i < 60_000; i++) rows.push(`${i}\tdocument ${i}\t${randomBytes(6).toString('hex')}\n`);
  return Buffer.concat([Buffer.from(rows.join('')), Buffer.alloc(300_000), randomBytes(100_000)]);
}

/** The compressed bytes in pieces, like a download. */
function body(bytes: Buffer, piece = 65_536): Readable {
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += piece) parts.push(bytes.subarray(at, at + piece));
  return Readable.from(parts);
}

// the zstd tool where the machine has one (it is looked up on PATH), and Node's zstd
describe.each([
  ['the zstd tool (if on PATH)', undefined],
  ["Node's zstd", ''],
])('decompressToFile with %s', (_name, setting) => {
  beforeEach(() => {
    if (setting === undefined) delete process.env.LC2_ZSTD;
    else process.env.LC2_ZSTD = setting;
    forgetZstdTool();
  });

  it('writes the decompressed bytes', async () => {
    const data = sample();
    const file = join(dir, 'out');
    await decompressToFile(body(zstdCompressSync(data)), file, undefined);
    expect((await readFile(file)).equals(data)).toBe(true);
  });

  it('fails on a truncated dump', async () => {
    const packed = zstdCompressSync(sample());
    await expect(
      decompressToFile(body(packed.subarray(0, packed.length - 1000)), join(dir, 'out'), undefined),
    ).rejects.toThrow();
  });

  it('fails on bytes that are not zstd', async () => {
    await expect(decompressToFile(body(randomBytes(200_000)), join(dir, 'out'), undefined)).rejects.toThrow();
  });

  it('passes on a failing download', async () => {
    const broken = new Readable({
      read() {
        this.destroy(new Error('connection reset by the store'));
      },
    });
    await expect(decompressToFile(broken, join(dir, 'out'), undefined)).rejects.toThrow(
      'connection reset by the store',
    );
  });

  it('stops when aborted', async () => {
    const endless = new Readable({
      read() {
        setTimeout(() => {
          this.push(randomBytes(1024));
        }, 5);
      },
    });
    const abort = new AbortController();
    setTimeout(() => {
      abort.abort(new Error('restore cancelled'));
    }, 50);
    await expect(decompressToFile(endless, join(dir, 'out'), abort.signal)).rejects.toThrow();
  });
});

describe('the zstd tool setting', () => {
  it('says how to fix a wrong LC2_ZSTD path', async () => {
    process.env.LC2_ZSTD = join(dir, 'no-such-zstd');
    forgetZstdTool();
    await expect(
      decompressToFile(body(zstdCompressSync(Buffer.from('x'))), join(dir, 'out'), undefined),
    ).rejects.toThrow(/zstd.*LC2_ZSTD/s);
  });
});
