// The ONE place that names things in a backup bucket. Nobody else concatenates keys: the
// manifest, restore, verify, retention and `catalog rebuild` all find data through here.
//
//   <projectId>/<environment>/<timestamp>/manifest.json                 header, written last
//   <projectId>/<environment>/<timestamp>/manifest.entries.jsonl.gz     one line per document
//   <projectId>/<environment>/<timestamp>/db/database.pgdump.zst        pg_dump -Fc, zstd
//   <projectId>/<environment>/<timestamp>/dl/<source key>               document copies
//
// The documents may live under another prefix (spec.documentLibrary.destinationPrefix); the
// manifest records where.
import { createHash } from 'node:crypto';
import { ValidationError } from '../errors/index.ts';

/** UTC `YYYYMMDD-HHMMSS`, the seeds' timestamp form. */
export function backupTimestamp(date: Date): string {
  const iso = date.toISOString(); // 2025-11-09T14:30:00.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

export function parseBackupTimestamp(stamp: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$/.exec(stamp);
  if (!m) return undefined;
  const date = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

export interface BackupIdentity {
  backupId: string;
  timestamp: string;
}

/**
 * A backup's id, `<projectId>-<environment>-backup-<timestamp>` (e.g. retail-prd-backup-20251109-143000).
 * It is derived from the request so a retried request finds its own work: the timestamp is the
 * one in the request's name when the name has the seeds' form, else the request's creation
 * time, else `now`.
 */
export function backupIdentity(
  projectId: string,
  environment: string,
  request: { name?: string | undefined; creationTimestamp?: string | undefined },
  now: Date,
): BackupIdentity {
  const stem = `${projectId}-${environment}-backup-`;
  const fromName = request.name?.startsWith(stem) === true ? request.name.slice(stem.length) : undefined;
  let timestamp: string;
  if (fromName !== undefined && parseBackupTimestamp(fromName)) timestamp = fromName;
  else if (request.creationTimestamp !== undefined)
    timestamp = backupTimestamp(new Date(request.creationTimestamp));
  else timestamp = backupTimestamp(now);
  return { backupId: `${stem}${timestamp}`, timestamp };
}

/**
 * A restore's id: `<project>-<environment>-restore-<UTC start second>`, and, for a named request
 * (a RestoreRequest; `request` = its namespace/name), a short hash of the name, so that two
 * requests of one project that start in the same second never share an id.
 */
export function restoreId(backupId: string, now: Date, request?: string): string {
  const base = `${backupId.replace(/-backup-\d{8}-\d{6}$/, '')}-restore-${backupTimestamp(now)}`;
  if (request === undefined) return base;
  return `${base}-${createHash('sha256').update(request).digest('hex').slice(0, 6)}`;
}

/**
 * The native snapshot of a backup's database (RDS DBSnapshotIdentifier): derived from the backup
 * id, so a retried backup finds and adopts its snapshot instead of taking a second one.
 * `lc2-<backupId>`: begins with a letter, only letters, digits and single hyphens, at most 255
 * characters (RDS's rules), e.g. `lc2-retail-prd-backup-20251109-143000`.
 */
export function databaseSnapshotId(backupId: string): string {
  return `lc2-${backupId}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .slice(0, 255)
    .replace(/-+$/, '');
}

export interface BackupLayout {
  root: string;
  manifestKey: string;
  entriesKey: string;
  databaseDumpKey: string;
  documentsPrefix: string;
}

export function backupLayout(
  projectId: string,
  environment: string,
  timestamp: string,
  documentsPrefix?: string,
): BackupLayout {
  const root = `${projectId}/${environment}/${timestamp}`;
  return {
    root,
    manifestKey: `${root}/manifest.json`,
    entriesKey: `${root}/manifest.entries.jsonl.gz`,
    databaseDumpKey: `${root}/db/database.pgdump.zst`,
    documentsPrefix: stripSlash(documentsPrefix ?? `${root}/dl`),
  };
}

/** Where the manifests of a project (and environment) are, for list and rebuild. */
export function manifestSearchPrefix(projectId?: string, environment?: string): string {
  if (projectId === undefined) return '';
  return environment === undefined ? `${projectId}/` : `${projectId}/${environment}/`;
}

/** Recognises a manifest key; returns the parts of its root. */
export function parseManifestKey(
  key: string,
): { projectId: string; environment: string; timestamp: string } | undefined {
  const m = /^([a-z0-9-]+)\/([a-z0-9-]+)\/(\d{8}-\d{6})\/manifest\.json$/.exec(key);
  return m ? { projectId: m[1] ?? '', environment: m[2] ?? '', timestamp: m[3] ?? '' } : undefined;
}

function stripSlash(prefix: string): string {
  return prefix.replace(/\/+$/, '');
}

/** The key a document's copy gets under a prefix. The source key is kept byte for byte. */
export function documentKey(prefix: string, sourceKey: string): string {
  return prefix === '' ? sourceKey : `${stripSlash(prefix)}/${sourceKey}`;
}

/** The inverse of documentKey: the source key of a stored copy. */
export function sourceKeyOf(prefix: string, storedKey: string): string {
  const p = prefix === '' ? '' : `${stripSlash(prefix)}/`;
  if (!storedKey.startsWith(p)) {
    throw new ValidationError(`stored key "${storedKey}" is not under the documents prefix "${prefix}"`);
  }
  return storedKey.slice(p.length);
}
