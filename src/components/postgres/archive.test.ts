import { describe, expect, it } from 'vitest';
import {
  BlockWalker,
  emptyBlock,
  NeedMoreBytes,
  parseArchiveHead,
  Section,
  UnsupportedArchive,
} from './archive.ts';

/** Writes the custom format's primitives (int size 4, as pg_dump does on every platform here). */
class Writer {
  readonly parts: Buffer[] = [];
  byte(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  int(v: number): this {
    const b = Buffer.alloc(5);
    b[0] = v < 0 ? 1 : 0;
    b.writeUInt32LE(Math.abs(v), 1);
    this.parts.push(b);
    return this;
  }
  str(s: string | undefined): this {
    if (s === undefined) return this.int(-1);
    this.int(Buffer.byteLength(s));
    this.parts.push(Buffer.from(s));
    return this;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

interface Entry {
  dumpId: number;
  desc: string;
  section: number;
  data?: string[];
}

/** A small archive of version 1.`minor`: header, TOC and the data blocks of entries with data. */
function archive(entries: Entry[], minor = 14, compression = 0): Buffer {
  const w = new Writer();
  w.parts.push(Buffer.from('PGDMP'));
  w.byte(1).byte(minor).byte(0).byte(4).byte(8).byte(1);
  if (minor < 15) w.int(compression);
  else w.byte(compression);
  for (const v of [1, 2, 3, 4, 5, 126, 0]) w.int(v);
  w.str('app').str('15.18').str('15.18');
  w.int(entries.length);
  for (const e of entries) {
    w.int(e.dumpId)
      .int(e.data === undefined ? 0 : 1)
      .str('0')
      .str('1')
      .str(`t${e.dumpId}`)
      .str(e.desc);
    w.int(e.section)
      .str('CREATE …;')
      .str('')
      .str(e.data === undefined ? undefined : `COPY public.t${e.dumpId} FROM stdin;\n`);
    w.str('public').str('').str('heap');
    if (minor >= 16) w.int(114);
    w.str('owner').str('false').str('1').str('2').str(undefined);
    w.byte(1);
    w.parts.push(Buffer.alloc(8));
  }
  for (const e of entries) {
    if (e.data === undefined) continue;
    w.byte(1).int(e.dumpId);
    for (const row of e.data) w.str(row);
    w.int(0);
  }
  return w.bytes();
}

const entries: Entry[] = [
  { dumpId: 10, desc: 'TABLE', section: Section.preData },
  { dumpId: 20, desc: 'TABLE DATA', section: Section.data, data: ['1\ta\n', '2\tb\n'] },
  { dumpId: 21, desc: 'TABLE DATA', section: Section.data, data: [] },
  { dumpId: 300, desc: 'TABLE DATA', section: Section.data, data: ['x'.repeat(70_000), 'y\n'] },
  { dumpId: 40, desc: 'INDEX', section: Section.postData },
  // past the 31 bits a bitwise read would keep
  { dumpId: 4_000_000_000, desc: 'COMMENT', section: Section.none },
];

/** Walks `bytes` in pieces of `size` (the walker asks where each piece starts). */
function walkAll(bytes: Buffer, size: number): { id: number; start: number; end?: number }[] {
  const head = parseArchiveHead(bytes);
  const blocks: { id: number; start: number; end?: number }[] = [];
  const walker = new BlockWalker(head, {
    start: (id, _type, start) => blocks.push({ id, start }),
    end: (end) => {
      const last = blocks.at(-1);
      if (last) last.end = end;
    },
  });
  // a piece ending inside a header is given again from where the walker stopped, one byte longer
  let extra = 0;
  while (walker.next < bytes.length) {
    const before = walker.next;
    walker.walk(bytes.subarray(before, Math.min(bytes.length, before + size + extra)));
    extra = walker.next === before ? extra + 1 : 0;
  }
  expect(walker.atBoundary).toBe(true);
  return blocks;
}

describe('pg_dump custom archives', () => {
  it.each([13, 14, 15, 16])('reads the header and TOC of version 1.%i', (minor) => {
    const head = parseArchiveHead(archive(entries, minor));
    expect(head.version).toBe(`1.${minor}.0`);
    expect(head.compressed).toBe(false);
    expect(head.entries.map((e) => [e.dumpId, e.hasData, e.desc, e.section, e.name])).toEqual(
      entries.map((e) => [e.dumpId, e.data !== undefined, e.desc, e.section, `public.t${e.dumpId}`]),
    );
  });

  it('says when the bytes end before the TOC does, at every cut', () => {
    const bytes = archive(entries);
    const { dataStart } = parseArchiveHead(bytes);
    for (let cut = 0; cut < dataStart; cut += 7) {
      expect(() => parseArchiveHead(bytes.subarray(0, cut)), `cut at ${cut}`).toThrow(NeedMoreBytes);
    }
  });

  it('refuses what it does not split: other versions, other formats, not an archive; and sees compression', () => {
    expect(() => parseArchiveHead(archive(entries, 12))).toThrow(UnsupportedArchive);
    expect(() => parseArchiveHead(archive(entries, 17))).toThrow(/archive version 1\.17\.0/);
    const directory = archive(entries);
    directory[10] = 3;
    expect(() => parseArchiveHead(directory)).toThrow(/format 3/);
    expect(() => parseArchiveHead(Buffer.from('-- plain SQL dump\n'))).toThrow(/no PGDMP magic/);
    expect(parseArchiveHead(archive(entries, 14, 6)).compressed).toBe(true);
    expect(parseArchiveHead(archive(entries, 15, 2)).compressed).toBe(true);
  });

  it.each([1, 3, 64, 65_536, 1 << 20])(
    'finds where each data block starts and ends in pieces of %i bytes',
    (size) => {
      const bytes = archive(entries);
      const blocks = walkAll(bytes, size);
      expect(blocks.map((b) => b.id)).toEqual([20, 21, 300]);
      // blocks are contiguous from the end of the TOC to the end of the file
      expect(blocks[0]?.start).toBe(parseArchiveHead(bytes).dataStart);
      expect(blocks[1]?.start).toBe(blocks[0]?.end);
      expect(blocks[2]?.start).toBe(blocks[1]?.end);
      expect(blocks[2]?.end).toBe(bytes.length);
      // the empty table's block is what emptyBlock writes
      expect(bytes.subarray(blocks[1]?.start, blocks[1]?.end)).toEqual(emptyBlock(21, 4));
    },
  );

  it('stops at a negative chunk length with the offset', () => {
    const bytes = archive([{ dumpId: 5, desc: 'TABLE DATA', section: Section.data, data: ['ab'] }]);
    const at = parseArchiveHead(bytes).dataStart + 6;
    bytes[at] = 1;
    expect(() => walkAll(bytes, 1024)).toThrow(`chunk at offset ${at}: negative length -2`);
  });
});
