// Deterministic benchmark data: the same bytes on every run and machine. Object bodies are
// AES-256-CTR keystreams keyed by a name (incompressible, like most documents, and fast to
// make); the database is built by SQL from generate_series.
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectStore } from '../src/providers/types.ts';

const CHUNK = 1024 * 1024;

/** `size` deterministic bytes named by `seed`, as a stream of 1 MiB chunks. */
export function detStream(seed: string, size: number): Readable {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, left);
      left -= n;
      this.push(cipher.update(n === CHUNK ? zeros : zeros.subarray(0, n)));
    },
  });
}

export function detBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

export async function writeFileOf(path: string, seed: string, size: number): Promise<void> {
  await pipeline(detStream(seed, size), createWriteStream(path));
}

/** A group of objects: `count` × `size` bytes under `prefix`. */
export interface ObjectSet {
  prefix: string;
  count: number;
  size: number;
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export const small: ObjectSet = { prefix: 'small/', count: 10_000, size: 4 * KiB };
export const medium: ObjectSet = { prefix: 'medium/', count: 1_000, size: MiB };
export const large: ObjectSet = { prefix: 'large/', count: 4, size: 256 * MiB };

export function setBytes(sets: readonly ObjectSet[]): number {
  return sets.reduce((sum, s) => sum + s.count * s.size, 0);
}

export function setCount(sets: readonly ObjectSet[]): number {
  return sets.reduce((sum, s) => sum + s.count, 0);
}

/** Keys like a document library's: `<prefix>document_library/<folder>/<id>/1.0`. */
function keyOf(set: ObjectSet, i: number): string {
  return `${set.prefix}document_library/${i % 100}/${i}/1.0`;
}

/** Uploads the sets into a bucket, a few objects at a time. */
export async function fillBucket(
  store: ObjectStore,
  bucket: string,
  sets: readonly ObjectSet[],
): Promise<void> {
  for (const set of sets) {
    const parallel = set.size >= 64 * MiB ? 2 : 32;
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < set.count) {
          const i = next++;
          const key = keyOf(set, i);
          const body = set.size <= CHUNK ? detBytes(key, set.size) : detStream(key, set.size);
          await store.put(bucket, key, body, { size: set.size });
        }
      }),
    );
  }
}

/**
 * A document-library-like database of about `mib` MiB: documents with text bodies (which
 * compress about 2:1, like real rows) and a version table with an index, so pg_restore -j has
 * independent work.
 */
export function databaseSql(mib: number): string[] {
  // ~1 KiB per document row, ~0.25 KiB per version row (4 per document)
  const docs = Math.round((mib * 1024) / 2);
  return [
    `CREATE TABLE dl_file_entry (id bigint PRIMARY KEY, folder_id int NOT NULL, title text NOT NULL, description text NOT NULL, created timestamptz NOT NULL)`,
    `INSERT INTO dl_file_entry SELECT i, i % 1000, 'document ' || i, repeat(md5(i::text) || ' ' || md5((i * 7)::text), 14), timestamptz '2026-01-01' + i * interval '1 second' FROM generate_series(1, ${docs}) AS i`,
    `CREATE TABLE dl_file_version (id bigint PRIMARY KEY, file_entry_id bigint NOT NULL, version text NOT NULL, checksum text NOT NULL, size bigint NOT NULL, note text NOT NULL)`,
    `INSERT INTO dl_file_version SELECT i, i / 4, '1.' || (i % 4), md5(i::text), i % 100000, repeat(md5((i * 3)::text), 5) FROM generate_series(1, ${docs * 4}) AS i`,
    `CREATE INDEX dl_file_version_entry ON dl_file_version (file_entry_id)`,
    `ANALYZE`,
  ];
}
