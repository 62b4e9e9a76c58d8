import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogSchemaError } from './errors.ts';
import { latestSchemaVersion, migrate, migrations, type Migration } from './migrations.ts';
import { openPglite, type SqlDatabase } from './sql.ts';

describe('catalog migrations', { timeout: 60_000 }, () => {
  let db: SqlDatabase;
  beforeAll(async () => {
    db = await openPglite(undefined);
  }, 120_000);
  afterAll(async () => {
    await db.close();
  });

  it('applies every migration once, recording each in schema_migrations', async () => {
    expect(await migrate(db)).toEqual({ from: 0, to: latestSchemaVersion, applied: [1, 2] });
    expect(await migrate(db)).toEqual({ from: latestSchemaVersion, to: latestSchemaVersion, applied: [] });
    const rows = await db.query('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
    expect(rows[0]?.applied_at).toBeInstanceOf(Date);
  });

  it('gives rows a UUID by default (gen_random_uuid works on this back end)', async () => {
    const [row] = await db.query(
      `INSERT INTO backup_requests (backup_id, project_id, environment, state)
       VALUES ('m-1', 'p', 'prd', 'Pending') RETURNING id`,
    );
    expect(row?.id).toMatch(/^[0-9a-f-]{36}$/);
    await expect(
      db.query(
        `INSERT INTO backup_requests (backup_id, project_id, environment, state) VALUES ('m-2', 'p', 'prd', 'Lost')`,
      ),
    ).rejects.toThrow(/backup_state/);
  });

  it('refuses a schema newer than it knows', async () => {
    await db.query(`INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')`);
    try {
      await expect(migrate(db)).rejects.toThrow(CatalogSchemaError);
      await expect(migrate(db)).rejects.toThrow(
        /schema version 99, newer than this lc2-backup knows \(2\): upgrade/,
      );
    } finally {
      await db.query('DELETE FROM schema_migrations WHERE version = 99');
    }
  });

  it('rolls back every pending migration when one of them fails', async () => {
    const list: Migration[] = [
      ...migrations,
      { version: 3, name: 'good', sql: 'CREATE TABLE good_one (a INT); CREATE TABLE good_two (b INT);' },
      { version: 4, name: 'bad', sql: 'ALTER TABLE no_such_table ADD COLUMN c INT' },
    ];
    await expect(migrate(db, list)).rejects.toThrow(/migration 4 \(bad\) .* failed, nothing was changed/);
    const [row] = await db.query(
      `SELECT to_regclass('good_one') IS NULL AS gone, (SELECT MAX(version) FROM schema_migrations) AS version`,
    );
    expect(row).toEqual({ gone: true, version: latestSchemaVersion });
  });

  it('refuses a list with gaps or out of order', async () => {
    await expect(migrate(db, [{ version: 3, name: 'x', sql: 'SELECT 1' }])).rejects.toThrow(/out of order/);
  });
});
