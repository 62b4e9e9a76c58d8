// Reading pg_dump's custom archive format (-Fc) far enough to split its data section: the header,
// the table of contents, and the framing of the data blocks that follow it. Nothing here reads
// the data itself; the PostgreSQL tools do (parallelRestore.ts).
//
// The layout (PostgreSQL's pg_backup_archiver.c and pg_backup_custom.c, archive versions 1.13 to
// 1.16, PostgreSQL 11 to 17):
//   "PGDMP", version major/minor/revision, int size, offset size, format (1 = custom) — bytes;
//   compression: an int (level) before 1.15, a byte (algorithm) from 1.15;
//   creation time (7 ints), database name, server version, pg_dump version (strings);
//   the TOC: an entry count, then per entry dumpId, hadDumper, tableoid, oid, tag, desc,
//   section, defn, dropStmt, copyStmt, namespace, tablespace, tableam (≥ 1.14), relkind
//   (int, ≥ 1.16), owner, withOids, dependencies (strings up to a null one), and the data
//   offset (a flag byte + offset-size bytes);
//   then the data blocks in TOC order: a type byte (1 = table data), the dumpId, and chunks,
//   each an int length and that many bytes, ended by a length of 0.
// An int is a sign byte and int-size bytes, little-endian; a string is an int length (-1: null)
// and its bytes.

/** Thrown while parsing when the bytes given end before what is being read. */
export class NeedMoreBytes extends Error {
  constructor() {
    super('the archive continues past the bytes read so far');
  }
}

/** pg_backup_archiver.h teSection */
export const Section = { none: 1, preData: 2, data: 3, postData: 4 } as const;

export interface TocEntry {
  dumpId: number;
  /** The entry has a data block (table data, large objects). */
  hasData: boolean;
  /** e.g. TABLE, TABLE DATA, INDEX, SEQUENCE SET, BLOBS */
  desc: string;
  section: number;
  /** For messages: namespace.tag */
  name: string;
}

export interface ArchiveHead {
  /** e.g. "1.14.0" */
  version: string;
  intSize: number;
  /** Whether pg_dump compressed the data blocks itself (-Z > 0). */
  compressed: boolean;
  entries: TocEntry[];
  /** Where the first data block starts: the header and TOC are the bytes before it. */
  dataStart: number;
}

const magic = 'PGDMP';
const blockData = 1;
const formatCustom = 1;
const minMinor = 13;
const maxMinor = 16;

/** Reads the archive's primitives from a buffer that may end early (NeedMoreBytes). */
class Reader {
  readonly #bytes: Uint8Array;
  pos: number;
  intSize = 4;

  constructor(bytes: Uint8Array, pos = 0) {
    this.#bytes = bytes;
    this.pos = pos;
  }

  byte(): number {
    if (this.pos >= this.#bytes.length) throw new NeedMoreBytes();
    return this.#bytes[this.pos++] as number;
  }

  /** Sign byte, then intSize bytes little-endian. */
  int(): number {
    const bytes = this.#bytes;
    const at = this.pos;
    if (at + 1 + this.intSize > bytes.length) throw new NeedMoreBytes();
    let value: number;
    // 4 everywhere pg_dump runs today; this is read once per row of every table when walking
    if (this.intSize === 4) {
      value =
        ((bytes[at + 1] as number) | ((bytes[at + 2] as number) << 8) | ((bytes[at + 3] as number) << 16)) +
        (bytes[at + 4] as number) * 0x1000000;
    } else {
      value = 0;
      for (let i = 0; i < this.intSize; i++) value += (bytes[at + 1 + i] as number) * 2 ** (8 * i);
    }
    this.pos = at + 1 + this.intSize;
    return bytes[at] === 0 ? value : -value;
  }

  string(): string | undefined {
    const length = this.int();
    if (length < 0) return undefined;
    if (this.pos + length > this.#bytes.length) throw new NeedMoreBytes();
    const text = Buffer.from(this.#bytes.buffer, this.#bytes.byteOffset + this.pos, length).toString('utf8');
    this.pos += length;
    return text;
  }

  skip(count: number): void {
    if (this.pos + count > this.#bytes.length) throw new NeedMoreBytes();
    this.pos += count;
  }
}

/** Why an archive is not one this module splits; the caller restores it the plain way. */
export class UnsupportedArchive extends Error {}

function readHeader(r: Reader): { version: string; minor: number; offSize: number; compressed: boolean } {
  r.skip(magic.length);
  const major = r.byte();
  const minor = r.byte();
  const revision = r.byte();
  const version = `${major}.${minor}.${revision}`;
  if (major !== 1 || minor < minMinor || minor > maxMinor) {
    throw new UnsupportedArchive(`archive version ${version} (known: 1.${minMinor}–1.${maxMinor})`);
  }
  r.intSize = r.byte();
  const offSize = r.byte();
  const format = r.byte();
  if (r.intSize < 1 || r.intSize > 6 || format !== formatCustom) {
    throw new UnsupportedArchive(`int size ${r.intSize}, format ${format}`);
  }
  const compression = minor < 15 ? r.int() : r.byte();
  for (let i = 0; i < 7; i++) r.int(); // creation time
  r.string(); // database
  r.string(); // server version
  r.string(); // pg_dump version
  return { version, minor, offSize, compressed: compression !== 0 };
}

function readEntry(r: Reader, minor: number, offSize: number): TocEntry {
  const dumpId = r.int();
  const hasData = r.int() !== 0;
  r.string(); // tableoid
  r.string(); // oid
  const tag = r.string() ?? '';
  const desc = r.string() ?? '';
  const section = r.int();
  r.string(); // defn
  r.string(); // dropStmt
  r.string(); // copyStmt
  const namespace = r.string();
  r.string(); // tablespace
  if (minor >= 14) r.string(); // tableam
  if (minor >= 16) r.int(); // relkind
  r.string(); // owner
  r.string(); // withOids
  while (r.string() !== undefined); // dependencies
  r.skip(1 + offSize); // data offset
  return { dumpId, hasData, desc, section, name: namespace === undefined ? tag : `${namespace}.${tag}` };
}

/**
 * Parses the header and TOC from the start of an archive. Throws NeedMoreBytes when `bytes` ends
 * before the TOC does, UnsupportedArchive for a format or version this module does not split.
 */
export function parseArchiveHead(bytes: Uint8Array): ArchiveHead {
  if (bytes.length < magic.length) throw new NeedMoreBytes();
  if (Buffer.from(bytes.subarray(0, magic.length)).toString('latin1') !== magic) {
    throw new UnsupportedArchive('not a pg_dump custom-format archive (no PGDMP magic)');
  }
  const r = new Reader(bytes);
  const { version, minor, offSize, compressed } = readHeader(r);
  const count = r.int();
  const entries: TocEntry[] = [];
  for (let i = 0; i < count; i++) entries.push(readEntry(r, minor, offSize));
  return { version, intSize: r.intSize, compressed, entries, dataStart: r.pos };
}

/** The bytes of an empty data block for `dumpId`: its header and the end-of-chunks mark. */
export function emptyBlock(dumpId: number, intSize: number): Buffer {
  const out = Buffer.alloc(1 + 2 * (1 + intSize));
  out[0] = blockData;
  let value = dumpId;
  for (let i = 0; i < intSize; i++) {
    out[2 + i] = value % 256;
    value = Math.floor(value / 256);
  }
  return out;
}

export interface BlockEvents {
  /** A data block for `dumpId` starts at file offset `offset` (its header's first byte). */
  start(dumpId: number, type: number, offset: number): void;
  /** The current block ends just before `offset`. */
  end(offset: number): void;
}

/**
 * Walks the data blocks of an archive given in pieces, in file order, reporting where each block
 * starts and ends. Only headers and chunk lengths are read; chunk bytes are skipped, and a piece
 * may end anywhere (the walker says which offset it needs next).
 */
export class BlockWalker {
  readonly #intSize: number;
  readonly #events: BlockEvents;
  /** The file offset of the next thing to read. */
  #next: number;
  #inBlock = false;

  constructor(head: ArchiveHead, events: BlockEvents) {
    this.#intSize = head.intSize;
    this.#events = events;
    this.#next = head.dataStart;
  }

  /** The file offset the walker reads next: the next piece must start there. */
  get next(): number {
    return this.#next;
  }

  /** Whether the walk stands between blocks (where the archive may end). */
  get atBoundary(): boolean {
    return !this.#inBlock;
  }

  /** Walks `piece`, which starts at file offset `this.next`. */
  walk(piece: Uint8Array): void {
    const base = this.#next;
    const r = new Reader(piece);
    r.intSize = this.#intSize;
    const intBytes = 1 + this.#intSize;
    for (;;) {
      const at = r.pos;
      if (!this.#inBlock) {
        if (at + 1 + intBytes > piece.length) break;
        const type = r.byte();
        const dumpId = r.int();
        this.#inBlock = true;
        this.#events.start(dumpId, type, base + at);
        continue;
      }
      if (at + intBytes > piece.length) break;
      const length = r.int();
      if (length < 0) throw new Error(`data block chunk at offset ${base + at}: negative length ${length}`);
      if (length === 0) {
        this.#inBlock = false;
        this.#events.end(base + r.pos);
        continue;
      }
      // the chunk may reach past this piece: the next piece starts after it
      if (r.pos + length > piece.length) {
        this.#next = base + r.pos + length;
        return;
      }
      r.pos += length;
    }
    this.#next = base + r.pos;
  }
}
