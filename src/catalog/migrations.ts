// Schema of the history catalog as an ordered list of migrations. A migration, once released,
// is never edited: a change to the schema is a new migration at the end of the list.
import { CatalogSchemaError } from './errors.ts';
import type { SqlDatabase, SqlExecutor } from './sql.ts';

export interface Migration {
  /** 1, 2, 3, … without gaps. */
  version: number;
  name: string;
  /** One or more statements; runs with the other pending migrations in one transaction. */
  sql: string;
}

// Column names follow the phase-1 plan's backup_requests table (seed 000) so its queries and
// dashboards keep working. Differences, on purpose:
// - backup_id is the identity of a backup (deterministic, e.g. retail-prd-backup-20251109-143000):
//   a retried request finds its row by it.
// - cr_name/cr_namespace may be NULL: a standalone CLI backup has no custom resource, and a row
//   re-created from a manifest in a bucket does not know it. UNIQUE (cr_namespace, cr_name)
//   still holds for every row that has both.
// - state also allows ManifestMissing: `catalog rebuild` found the row but not its manifest.
// - restore_requests.backup_id is not a foreign key: a restore may name a backup known only
//   from its manifest (catalog lost or not rebuilt yet), and history outlives retention.
const initial = `
CREATE TABLE backup_requests (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    backup_id TEXT NOT NULL,
    cr_name VARCHAR(255),
    cr_namespace VARCHAR(255),
    project_id VARCHAR(100) NOT NULL,
    environment VARCHAR(50) NOT NULL,
    provider VARCHAR(50),

    state VARCHAR(50) NOT NULL,
    start_time TIMESTAMPTZ,
    completion_time TIMESTAMPTZ,
    duration_ms BIGINT,
    failure_reason TEXT,

    db_type VARCHAR(20),
    db_instance_id VARCHAR(255),
    db_snapshot_id VARCHAR(255),
    db_snapshot_size_bytes BIGINT,

    dl_source_bucket VARCHAR(255),
    dl_destination_bucket VARCHAR(255),
    dl_destination_prefix VARCHAR(500),
    dl_object_count BIGINT,
    dl_total_size_bytes BIGINT,
    dl_manifest_path VARCHAR(500),
    manifest_checksum TEXT,

    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    archived_at TIMESTAMPTZ,

    CONSTRAINT unique_backup_id UNIQUE (backup_id),
    CONSTRAINT unique_cr UNIQUE (cr_namespace, cr_name),
    CONSTRAINT backup_state CHECK (state IN ('Pending', 'InProgress', 'Succeeded', 'Failed', 'ManifestMissing')),
    CONSTRAINT backup_db_type CHECK (db_type IN ('snapshot', 'dump')),
    CONSTRAINT backup_counts CHECK (
        duration_ms >= 0 AND db_snapshot_size_bytes >= 0 AND dl_object_count >= 0 AND dl_total_size_bytes >= 0
    )
);

CREATE INDEX idx_project_env ON backup_requests(project_id, environment);
CREATE INDEX idx_state ON backup_requests(state);
CREATE INDEX idx_created_at ON backup_requests(created_at DESC);

CREATE TABLE restore_requests (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    restore_id TEXT NOT NULL,
    backup_id TEXT NOT NULL,
    cr_name VARCHAR(255),
    cr_namespace VARCHAR(255),
    project_id VARCHAR(100) NOT NULL,
    environment VARCHAR(50) NOT NULL,

    target_db_instance_id VARCHAR(255),
    target_database VARCHAR(255),
    target_bucket VARCHAR(255),
    target_prefix VARCHAR(500),

    state VARCHAR(50) NOT NULL,
    start_time TIMESTAMPTZ,
    completion_time TIMESTAMPTZ,
    duration_ms BIGINT,
    failure_reason TEXT,
    restored_object_count BIGINT,
    restored_total_size_bytes BIGINT,

    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT unique_restore_id UNIQUE (restore_id),
    CONSTRAINT unique_restore_cr UNIQUE (cr_namespace, cr_name),
    CONSTRAINT restore_state CHECK (state IN ('Pending', 'InProgress', 'Succeeded', 'Failed')),
    CONSTRAINT restore_counts CHECK (
        duration_ms >= 0 AND restored_object_count >= 0 AND restored_total_size_bytes >= 0
    )
);

CREATE INDEX idx_restore_project_env ON restore_requests(project_id, environment);
CREATE INDEX idx_restore_backup_id ON restore_requests(backup_id);
CREATE INDEX idx_restore_state ON restore_requests(state);
CREATE INDEX idx_restore_created_at ON restore_requests(created_at DESC);
`;

// A BackupRequest deleted with deletionPolicy: Delete removes its stored backup; the row stays
// as history in state Deleted.
const deletedState = `
ALTER TABLE backup_requests DROP CONSTRAINT backup_state;
ALTER TABLE backup_requests ADD CONSTRAINT backup_state
    CHECK (state IN ('Pending', 'InProgress', 'Succeeded', 'Failed', 'ManifestMissing', 'Deleted'));
`;

export const migrations: readonly Migration[] = [
  { version: 1, name: 'backup and restore history', sql: initial },
  { version: 2, name: 'backups deleted on request', sql: deletedState },
];

export const latestSchemaVersion = migrations.length;

export interface MigrationResult {
  /** Schema version found (0: an empty database). */
  from: number;
  /** Schema version now. */
  to: number;
  /** Versions applied by this call, ascending; empty when the schema was current. */
  applied: number[];
}

// Serialises migrations of processes sharing one PostgreSQL catalog (two controllers starting
// together): the second waits, then finds nothing left to do. Any constant unlikely to be used
// by another application sharing the database will do; this one spells "lc2c".
const migrationLockKey = 0x6c633263;

function checkOrder(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration list out of order: position ${i + 1} holds version ${m.version}`);
    }
  });
}

async function currentVersion(tx: SqlExecutor): Promise<number> {
  const rows = await tx.query('SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations');
  return Number(rows[0]?.version ?? 0);
}

/**
 * Brings the schema to the newest version in `list`, all pending migrations in one transaction:
 * on failure nothing of them stays. Re-running on a current schema changes nothing. A schema
 * newer than `list` knows is refused (an older lc2-backup must not write to it).
 */
export async function migrate(
  db: SqlDatabase,
  list: readonly Migration[] = migrations,
): Promise<MigrationResult> {
  checkOrder(list);
  const latest = list.length;
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [migrationLockKey]);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
    )`);
    const from = await currentVersion(tx);
    if (from > latest) {
      throw new CatalogSchemaError(
        `the ${db.description} has schema version ${from}, newer than this lc2-backup knows (${latest}): ` +
          `upgrade lc2-backup, or point it at another catalog.`,
      );
    }
    const pending = list.slice(from);
    for (const m of pending) {
      try {
        await tx.exec(m.sql);
      } catch (err) {
        throw new CatalogSchemaError(
          `migration ${m.version} (${m.name}) of the ${db.description} failed, nothing was changed: ` +
            (err instanceof Error ? err.message : String(err)),
        );
      }
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
    }
    return { from, to: Math.max(from, latest), applied: pending.map((m) => m.version) };
  });
}
