// The manifest: proof of what a backup stored. A small JSON header (the seeds' fields, a format
// version, the tool version, the database artifact, counts, the entries' hash) and a stream of
// per-document entries in gzip JSON Lines, so a library of millions of objects never has to
// fit in memory. The header carries `checksum: sha256:<hex>` over its canonical bytes
// (recursively key-sorted JSON without the checksum field). See docs/format.md.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { IntegrityError } from '../errors/index.ts';
import { validate } from '../../api/v1alpha1/parse.ts';

export const FORMAT_VERSION = 1;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a hex SHA-256');
const Checksum = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:<64 hex>"');

export const DocumentEntry = z.strictObject({
  /** Key in the source bucket. */
  key: z.string(),
  size: z.number().int().nonnegative(),
  etag: z.string(),
  lastModified: z.string(),
  sha256: Sha256,
  /** Key of the stored copy in documentLibrary.bucket. */
  storedKey: z.string(),
});
export type DocumentEntry = z.infer<typeof DocumentEntry>;

export const DatabaseArtifact = z.strictObject({
  /** pg-dump: a pg_dump archive we stored; rds-snapshot etc.: a provider snapshot. */
  type: z.enum(['pg-dump', 'rds-snapshot', 'gcp-snapshot', 'azure-snapshot']),
  instanceId: z.string(),
  databaseName: z.string().optional(),
  snapshotId: z.string().optional(),
  engine: z.literal('postgres'),
  engineVersion: z.string().optional(),
  /** Bytes stored (the compressed dump, or the snapshot's allocated size). */
  size: z.number().int().nonnegative(),
  checksum: Checksum.optional(),
  artifact: z
    .strictObject({
      bucket: z.string(),
      key: z.string(),
      format: z.enum(['custom']),
      compression: z.enum(['zstd', 'none']),
      uncompressedSize: z.number().int().nonnegative(),
    })
    .optional(),
  startedAt: z.string(),
  completedAt: z.string(),
});
export type DatabaseArtifact = z.infer<typeof DatabaseArtifact>;

export const ManifestHeader = z.strictObject({
  formatVersion: z.literal(FORMAT_VERSION),
  tool: z.strictObject({ name: z.literal('lc2-backup'), version: z.string() }),
  backupId: z.string(),
  projectId: z.string(),
  environment: z.string(),
  provider: z.string(),
  /** When the backup started (ISO 8601). */
  timestamp: z.string(),
  completedAt: z.string(),
  initiator: z.string().optional(),
  database: DatabaseArtifact,
  documentLibrary: z.strictObject({
    sourceBucket: z.string(),
    sourceStore: z.string(),
    bucket: z.string(),
    store: z.string(),
    prefix: z.string(),
    objectCount: z.number().int().nonnegative(),
    totalSize: z.number().int().nonnegative(),
    excludedPatterns: z.array(z.string()),
    excludedCount: z.number().int().nonnegative(),
    excludedSize: z.number().int().nonnegative(),
    entries: z.strictObject({
      key: z.string(),
      count: z.number().int().nonnegative(),
      /** SHA-256 of the stored (gzip) bytes of the entries file. */
      checksum: Checksum,
    }),
  }),
  checksum: Checksum,
});
export type ManifestHeader = z.infer<typeof ManifestHeader>;

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** The bytes the header checksum is computed over. */
export function canonicalBytes(header: Omit<ManifestHeader, 'checksum'> | ManifestHeader): Buffer {
  const { checksum: _ignored, ...rest } = header as ManifestHeader;
  return Buffer.from(JSON.stringify(canonical(rest)));
}

export function sha256Checksum(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Seals a header: computes its checksum and returns the bytes to store. */
export function encodeManifest(header: Omit<ManifestHeader, 'checksum'>): {
  header: ManifestHeader;
  bytes: Buffer;
} {
  const sealed = { ...header, checksum: sha256Checksum(canonicalBytes(header)) };
  return { header: sealed, bytes: Buffer.from(`${JSON.stringify(sealed, null, 2)}\n`) };
}

/** Parses and checks a stored header; a bad checksum or shape is an IntegrityError. */
export function decodeManifest(bytes: Buffer, where: string): ManifestHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new IntegrityError(
      `manifest ${where} is not valid JSON (${(err as Error).message}): the backup cannot be trusted`,
    );
  }
  let header: ManifestHeader;
  try {
    header = validate(ManifestHeader, raw, `manifest ${where}`);
  } catch (err) {
    throw new IntegrityError((err as Error).message, { cause: err });
  }
  const expected = sha256Checksum(canonicalBytes(header));
  if (expected !== header.checksum) {
    throw new IntegrityError(
      `manifest ${where}: checksum mismatch (stored ${header.checksum}, computed ${expected}): the manifest was altered or damaged`,
    );
  }
  return header;
}
