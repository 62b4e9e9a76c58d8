// camelCase fields ↔ snake_case columns, and the checks an input passes before it is written
// (so a bad value is reported by field name, not as a PostgreSQL error after a partial write).
import { ValidationError } from '../errors/index.ts';
import type { SqlRow } from './sql.ts';
import type { BackupRecord, RestoreRecord } from './types.ts';

interface ColumnSpec {
  column: string;
  kind: 'text' | 'int' | 'time';
  /** Longest text the column takes. */
  max?: number;
  /** The values a text column allows. */
  values?: readonly string[];
}

const text = (column: string, max = 255): ColumnSpec => ({ column, kind: 'text', max });
const int = (column: string): ColumnSpec => ({ column, kind: 'int' });
const time = (column: string): ColumnSpec => ({ column, kind: 'time' });
const oneOf = (column: string, values: readonly string[]): ColumnSpec => ({ column, kind: 'text', values });

export type Columns<R> = Readonly<Record<keyof R & string, ColumnSpec>>;

/** One kind of request history: backups or restores. */
export interface Table<R> {
  noun: 'backup' | 'restore';
  table: 'backup_requests' | 'restore_requests';
  /** The camelCase key of the identity field and its column. */
  key: 'backupId' | 'restoreId';
  keyColumn: 'backup_id' | 'restore_id';
  columns: Columns<R>;
}

const requestColumns = {
  id: text('id'),
  crName: text('cr_name'),
  crNamespace: text('cr_namespace'),
  projectId: text('project_id', 100),
  environment: text('environment', 50),
  startTime: time('start_time'),
  completionTime: time('completion_time'),
  durationMs: int('duration_ms'),
  failureReason: text('failure_reason', 4000),
  createdAt: time('created_at'),
  updatedAt: time('updated_at'),
} as const;

export const backupTable: Table<BackupRecord> = {
  noun: 'backup',
  table: 'backup_requests',
  key: 'backupId',
  keyColumn: 'backup_id',
  columns: {
    ...requestColumns,
    backupId: text('backup_id'),
    provider: text('provider', 50),
    state: oneOf('state', ['Pending', 'InProgress', 'Succeeded', 'Failed', 'ManifestMissing', 'Deleted']),
    dbType: oneOf('db_type', ['snapshot', 'dump']),
    dbInstanceId: text('db_instance_id'),
    dbSnapshotId: text('db_snapshot_id'),
    dbSnapshotSizeBytes: int('db_snapshot_size_bytes'),
    dlSourceBucket: text('dl_source_bucket'),
    dlDestinationBucket: text('dl_destination_bucket'),
    dlDestinationPrefix: text('dl_destination_prefix', 500),
    dlObjectCount: int('dl_object_count'),
    dlTotalSizeBytes: int('dl_total_size_bytes'),
    dlManifestPath: text('dl_manifest_path', 500),
    manifestChecksum: text('manifest_checksum', 200),
    archivedAt: time('archived_at'),
  },
};

export const restoreTable: Table<RestoreRecord> = {
  noun: 'restore',
  table: 'restore_requests',
  key: 'restoreId',
  keyColumn: 'restore_id',
  columns: {
    ...requestColumns,
    restoreId: text('restore_id'),
    backupId: text('backup_id'),
    state: oneOf('state', ['Pending', 'InProgress', 'Succeeded', 'Failed']),
    targetDbInstanceId: text('target_db_instance_id'),
    targetDatabase: text('target_database'),
    targetBucket: text('target_bucket'),
    targetPrefix: text('target_prefix', 500),
    restoredObjectCount: int('restored_object_count'),
    restoredTotalSizeBytes: int('restored_total_size_bytes'),
  },
};

function decodeValue(value: unknown, kind: ColumnSpec['kind']): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    // pg returns BIGINT as a string, PGlite as a number (a bigint above 2^53)
    case 'int':
      return Number(value);
    case 'time':
      return value instanceof Date ? value : new Date(value as string);
    default:
      return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

/** A row as the database returned it → a record. */
export function decode<R>(table: Table<R>, row: SqlRow): R {
  const entries = Object.entries<ColumnSpec>(table.columns).map(([field, spec]) => [
    field,
    decodeValue(row[spec.column], spec.kind),
  ]);
  return Object.fromEntries(entries) as R;
}

/** A column and the value to write to it, in the database's representation. */
export type Assignment = readonly [column: string, value: unknown];

function problem(value: unknown, spec: ColumnSpec): string | undefined {
  if (value === null) return undefined;
  if (spec.kind === 'int') {
    return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
      ? undefined
      : 'must be a whole number ≥ 0';
  }
  if (spec.kind === 'time') {
    return value instanceof Date && !Number.isNaN(value.getTime()) ? undefined : 'must be a valid Date';
  }
  if (typeof value !== 'string') return 'must be a string';
  if (spec.values !== undefined && !spec.values.includes(value)) {
    return `must be one of ${spec.values.join(', ')}`;
  }
  if (spec.max !== undefined && value.length > spec.max) {
    return `must be at most ${spec.max} characters (has ${value.length})`;
  }
  return undefined;
}

/**
 * The assignments for every field of `fields` that is not undefined, checked. `subject` names
 * the record in messages, e.g. "backup retail-prd-backup-20251109-143000".
 */
export function encode<R>(table: Table<R>, fields: object, subject: string): Assignment[] {
  const columns: Partial<Record<string, ColumnSpec>> = table.columns;
  const out: Assignment[] = [];
  for (const [field, value] of Object.entries(fields as Record<string, unknown>)) {
    if (value === undefined) continue;
    const spec = columns[field];
    if (spec === undefined) throw new ValidationError(`${subject}: ${field} is not a ${table.noun} field`);
    const wrong = problem(value, spec);
    if (wrong !== undefined) throw new ValidationError(`${subject}: ${field} ${wrong}`);
    out.push([spec.column, value]);
  }
  return out;
}

/** Throws unless `value` is a non-empty string. */
export function requireText(value: unknown, field: string, subject: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ValidationError(`${subject}: ${field} is required (a non-empty string)`);
  }
  return value;
}

/** Whether writing `assignments` would change `row` (Dates compared by instant). */
export function changes(row: SqlRow | Record<string, unknown>, assignments: readonly Assignment[]): boolean {
  return assignments.some(([column, value]) => {
    const old = row[column];
    if (value instanceof Date) return !(old instanceof Date) || old.getTime() !== value.getTime();
    if (typeof value === 'number') return old === null || old === undefined || Number(old) !== value;
    return (old ?? null) !== value;
  });
}
