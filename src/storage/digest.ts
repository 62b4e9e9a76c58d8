// SHA-256 of stored objects: by the store itself when it can (ObjectStore.digest, e.g. the file
// store's reused-buffer read loop), else by hashing the stream `get` returns. Every caller that
// hashes an object already stored (verify --deep, read-backs after a copy or a dump) goes through
// `digestObject`, so a faster store path serves them all.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ObjectDigest, ObjectStore } from '../providers/types.ts';

/** Size and SHA-256 of a stream's bytes; 'data' events, not an async iterator (one promise per chunk). */
export async function digestStream(stream: Readable): Promise<ObjectDigest> {
  const hash = createHash('sha256');
  let size = 0;
  stream.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  // rejects on an error and on a stream destroyed before its end
  await finished(stream);
  return { size, sha256: hash.digest('hex') };
}

/**
 * Size and SHA-256 of an object's bytes as stored now, re-reading every byte (never a checksum
 * kept beside the object). A missing object is the store's NotFoundError, as from `get`.
 */
export async function digestObject(store: ObjectStore, bucket: string, key: string): Promise<ObjectDigest> {
  if (store.digest !== undefined) return store.digest(bucket, key);
  return digestStream(await store.get(bucket, key));
}
