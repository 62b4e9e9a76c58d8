// The history catalog: every backup request and restore with its outcome. The Kubernetes API
// is the source of truth for active work; this is the queryable history, and the manifests in
// the buckets can rebuild it (`upsertFromManifest`).
//
// State rules (the same for backups and restores):
// - recordXStarted is an upsert by id, so a retried request finds its own row:
//   none → InProgress (or Pending); Pending/InProgress → stays, facts updated;
//   Failed → InProgress (or Pending) again: a retry is a new attempt of the same request, its
//   failure reason, completion time and duration are cleared (facts already learnt, like a
//   snapshot id, stay: the retry adopts that work);
//   Succeeded/ManifestMissing → returned unchanged: the work is done, the caller adopts it.
// - progress: Pending/InProgress → InProgress. success: Pending/InProgress → Succeeded, and
//   Succeeded → Succeeded (a repeated report, e.g. after a crash before the caller saw the
//   answer). failure: Pending/InProgress/Failed → Failed.
// - Anything else out of Succeeded, Failed or ManifestMissing throws CatalogStateError: a
//   terminal state never changes silently.
// - markManifestMissing: Succeeded/ManifestMissing → ManifestMissing; markDeleted: any
//   terminal state → Deleted; upsertFromManifest: anything but Failed or Deleted → Succeeded
//   (a manifest is written only when a backup completed).
// Writes are single statements where they can be (each is a round trip to the catalog, several
// per backup): a state change is one UPDATE whose WHERE holds the allowed states, a new start one
// INSERT; a transaction is opened only where a row must be read before it is written (a start
// of an id already recorded, upsertFromManifest) or to explain a refusal.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import { NotFoundError, ValidationError } from '../errors/index.ts';
import { CatalogConflictError, CatalogStateError } from './errors.ts';
import { migrate, type MigrationResult } from './migrations.ts';
import {
  backupTable,
  changes,
  decode,
  encode,
  requireText,
  restoreTable,
  type Assignment,
  type Table,
} from './rows.ts';
import {
  openPglite,
  openPostgres,
  pgliteDatabase,
  type SqlDatabase,
  type SqlExecutor,
  type SqlRow,
} from './sql.ts';
import type {
  BackupFilter,
  BackupProgress,
  BackupRecord,
  BackupStart,
  BackupSuccess,
  ManifestSummary,
  ManifestUpsertResult,
  RestoreFilter,
  RestoreProgress,
  RestoreRecord,
  RestoreStart,
  RestoreSuccess,
} from './types.ts';

export * from './types.ts';
export {
  CatalogConflictError,
  CatalogSchemaError,
  CatalogStateError,
  CatalogUnavailableError,
} from './errors.ts';

export interface Catalog {
  /** Where the catalog is, for messages; never holds a password. */
  readonly description: string;
  /** The schema version found at open, the version now, and the migrations this open applied. */
  readonly schema: Readonly<MigrationResult>;

  recordBackupStarted(start: BackupStart): Promise<BackupRecord>;
  recordBackupProgress(backupId: string, progress: BackupProgress): Promise<BackupRecord>;
  recordBackupSucceeded(backupId: string, result?: BackupSuccess): Promise<BackupRecord>;
  recordBackupFailed(backupId: string, reason: string): Promise<BackupRecord>;
  /** `catalog rebuild` found this Succeeded backup's row but not its manifest in the bucket. */
  markManifestMissing(backupId: string): Promise<BackupRecord>;
  /** The stored backup was removed on request (deletionPolicy: Delete): any terminal state → Deleted. */
  markDeleted(backupId: string): Promise<BackupRecord>;
  getBackup(backupId: string): Promise<BackupRecord | undefined>;
  /** Newest first (by the time the row was recorded, or the manifest's start time for a rebuilt row). */
  listBackups(filter?: BackupFilter): Promise<BackupRecord[]>;
  /** Inserts or updates a Succeeded row from a manifest found in a bucket. */
  upsertFromManifest(manifest: ManifestSummary): Promise<ManifestUpsertResult>;

  recordRestoreStarted(start: RestoreStart): Promise<RestoreRecord>;
  recordRestoreProgress(restoreId: string, progress: RestoreProgress): Promise<RestoreRecord>;
  recordRestoreSucceeded(restoreId: string, result?: RestoreSuccess): Promise<RestoreRecord>;
  recordRestoreFailed(restoreId: string, reason: string): Promise<RestoreRecord>;
  getRestore(restoreId: string): Promise<RestoreRecord | undefined>;
  listRestores(filter?: RestoreFilter): Promise<RestoreRecord[]>;

  close(): Promise<void>;
}

export interface OpenCatalogOptions {
  /** Extra pg pool settings (max, ssl, timeouts) for a postgres:// URL; ignored for PGlite. */
  pool?: pg.PoolConfig;
  /** Environment for the default location (XDG_DATA_HOME, HOME); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/** `pglite://<XDG_DATA_HOME or ~/.local/share>/lc2-backup/catalog`: the catalog of standalone CLI use. */
export function defaultCatalogUrl(env: NodeJS.ProcessEnv = process.env): string {
  const dataHome =
    env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== ''
      ? env.XDG_DATA_HOME
      : join(env.HOME ?? homedir(), '.local', 'share');
  return `pglite://${join(dataHome, 'lc2-backup', 'catalog')}`;
}

function pgliteDir(url: string, env: NodeJS.ProcessEnv): string | undefined {
  const location = url.slice('pglite://'.length);
  if (location === 'memory') return undefined;
  if (location === '') {
    throw new ValidationError(
      'catalog URL pglite:// names no directory: use pglite://<directory> or pglite://memory',
    );
  }
  const home = env.HOME ?? homedir();
  return resolve(location === '~' || location.startsWith('~/') ? home + location.slice(1) : location);
}

/**
 * Opens the catalog at `url` and brings its schema up to date:
 * - undefined: the default embedded catalog (`defaultCatalogUrl`);
 * - `pglite://memory`: embedded, in memory (tests);
 * - `pglite://<dir>`: embedded, in that directory (created when missing; `~/` is the home);
 * - `postgres://…` or `postgresql://…`: a PostgreSQL server (libpq URL, e.g. `?sslmode=require`).
 */
export async function openCatalog(
  url: string | undefined,
  options: OpenCatalogOptions = {},
): Promise<Catalog> {
  const env = options.env ?? process.env;
  const target = url ?? defaultCatalogUrl(env);
  if (target.startsWith('pglite://')) return openOn(await openPglite(pgliteDir(target, env)));
  if (target.startsWith('postgres://') || target.startsWith('postgresql://')) {
    // checked here because `new URL` would put the whole URL, password included, on its error
    if (!URL.canParse(target)) {
      throw new ValidationError(
        'catalog URL is not a valid postgresql:// URL: write postgresql://user:password@host:port/database ' +
          '(percent-encode special characters in the password)',
      );
    }
    // pg lets the URL's (absent) password override the pool's: put a separate password into the URL
    const password = options.pool?.password;
    const withPassword = new URL(target);
    if (typeof password === 'string' && withPassword.password === '')
      withPassword.password = encodeURIComponent(password);
    return openPostgresCatalog({ ...options.pool, connectionString: withPassword.toString() });
  }
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(target)?.[0] ?? '(none)';
  throw new ValidationError(
    `catalog URL scheme ${scheme} is not supported: use postgresql://…, postgres://…, pglite://<directory> or pglite://memory`,
  );
}

/** A catalog on a PostgreSQL server (connection checked and schema migrated before it resolves). */
export async function openPostgresCatalog(config: pg.PoolConfig): Promise<Catalog> {
  return openOn(await openPostgres(config));
}

/**
 * An embedded catalog: `'memory'`, a directory, or an open PGlite instance. An instance is
 * borrowed: `close()` leaves it open (tests share one in-memory database between catalogs).
 */
export async function openPgliteCatalog(location: string | PGlite): Promise<Catalog> {
  if (typeof location !== 'string')
    return openOn(pgliteDatabase(location, 'embedded catalog (shared instance)'));
  return openOn(await openPglite(location === 'memory' ? undefined : resolve(location)));
}

async function openOn(db: SqlDatabase): Promise<Catalog> {
  try {
    return new SqlCatalog(db, await migrate(db));
  } catch (err) {
    await db.close();
    throw err;
  }
}

type State = BackupRecord['state'];
type Start = BackupStart | RestoreStart;

const terminal: readonly State[] = ['Succeeded', 'Failed', 'ManifestMissing', 'Deleted'];
const defaultLimit = 100;
const maxLimit = 10_000;

function subjectOf(table: Table<unknown>, id: string): string {
  return `${table.noun} ${id}`;
}

function stateOf(row: SqlRow): State {
  return row.state as State;
}

function durationOf(start: unknown, end: Date): number | null {
  return start instanceof Date ? Math.max(0, end.getTime() - start.getTime()) : null;
}

function truncate(reason: string): string {
  return reason.length <= 4000 ? reason : `${reason.slice(0, 3990)} […]`;
}

function uniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === '23505';
}

/** `column = sql(placeholder of value)`, e.g. a duration from the row's start_time. */
interface Derived {
  column: string;
  value: unknown;
  sql: (param: string) => string;
}

/** The row of `id`, if any; `lock`: FOR UPDATE (inside a transaction). */
async function readRow(
  db: SqlExecutor,
  table: Table<unknown>,
  id: string,
  lock = false,
): Promise<SqlRow | undefined> {
  const rows = await db.query(
    `SELECT * FROM ${table.table} WHERE ${table.keyColumn} = $1${lock ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0];
}

const lockRow = (tx: SqlExecutor, table: Table<unknown>, id: string): Promise<SqlRow | undefined> =>
  readRow(tx, table, id, true);

async function insertRow(
  tx: SqlExecutor,
  table: Table<unknown>,
  set: readonly Assignment[],
): Promise<SqlRow | undefined> {
  const columns = set.map(([c]) => c).join(', ');
  const params = set.map((_, i) => `$${i + 1}`).join(', ');
  const rows = await tx.query(
    `INSERT INTO ${table.table} (${columns}) VALUES (${params}) ON CONFLICT (${table.keyColumn}) DO NOTHING RETURNING *`,
    set.map(([, v]) => v),
  );
  return rows[0];
}

/**
 * UPDATE the row of `id`: the assignments, the columns computed from the row itself, and — given
 * `states` — only if the row is in one of them (the check and the write in one statement).
 * Undefined when no row changed.
 */
async function updateWhere(
  db: SqlExecutor,
  table: Table<unknown>,
  id: string,
  change: { set: readonly Assignment[]; derived?: readonly Derived[]; states?: readonly State[] },
): Promise<SqlRow | undefined> {
  const params: unknown[] = [id];
  const placeholder = (value: unknown): string => `$${params.push(value)}`;
  const assignments = [
    ...change.set.map(([column, value]) => `${column} = ${placeholder(value)}`),
    ...(change.derived ?? []).map((d) => `${d.column} = ${d.sql(placeholder(d.value))}`),
    'updated_at = NOW()',
  ];
  const guard =
    change.states === undefined ? '' : ` AND state IN (${change.states.map(placeholder).join(', ')})`;
  const rows = await db.query(
    `UPDATE ${table.table} SET ${assignments.join(', ')} WHERE ${table.keyColumn} = $1${guard} RETURNING *`,
    params,
  );
  return rows[0];
}

/** UPDATE the row of `id`, locked by the caller's transaction. */
async function updateRow(
  tx: SqlExecutor,
  table: Table<unknown>,
  id: string,
  set: readonly Assignment[],
): Promise<SqlRow> {
  const row = await updateWhere(tx, table, id, { set });
  if (row === undefined) throw new Error(`${subjectOf(table, id)} vanished while locked`);
  return row;
}

/** Refuses a custom resource already recorded under another id (a CR is recorded once). */
async function assertCrFree(tx: SqlExecutor, table: Table<unknown>, id: string, start: Start): Promise<void> {
  if (start.crName === undefined || start.crNamespace === undefined) return;
  const rows = await tx.query(
    `SELECT ${table.keyColumn} AS other FROM ${table.table} WHERE cr_namespace = $1 AND cr_name = $2 AND ${table.keyColumn} <> $3`,
    [start.crNamespace, start.crName, id],
  );
  const other = rows[0]?.other;
  if (typeof other === 'string') {
    throw new CatalogConflictError(
      `${subjectOf(table, id)}: the custom resource ${start.crNamespace}/${start.crName} is already recorded as ` +
        `${table.noun} ${other}; a ${table.noun} request is recorded once, so give the new one another name.`,
    );
  }
}

/** Refuses a request that reuses an id recorded for another project, environment or custom resource. */
function assertSameRequest(table: Table<unknown>, id: string, row: SqlRow, start: Start): void {
  const pairs: [string, unknown, string | undefined][] = [
    ['projectId', row.project_id, start.projectId],
    ['environment', row.environment, start.environment],
    ['crNamespace', row.cr_namespace, start.crNamespace],
    ['crName', row.cr_name, start.crName],
  ];
  if ('restoreId' in start) pairs.push(['backupId', row.backup_id, start.backupId]);
  for (const [field, recorded, given] of pairs) {
    if (given !== undefined && recorded !== null && recorded !== given) {
      throw new CatalogConflictError(
        `${subjectOf(table, id)} is already recorded with ${field} ${JSON.stringify(recorded)}, not ${JSON.stringify(given)}: ` +
          `two different requests got the same ${table.noun} id; use another id for the new one.`,
      );
    }
  }
}

function requireStart(table: Table<unknown>, start: Start): string {
  const id = requireText((start as unknown as Record<string, unknown>)[table.key], table.key, table.noun);
  const subject = subjectOf(table, id);
  requireText(start.projectId, 'projectId', subject);
  requireText(start.environment, 'environment', subject);
  if ('restoreId' in start) requireText(start.backupId, 'backupId', subject);
  if ((start.crName === undefined) !== (start.crNamespace === undefined)) {
    throw new ValidationError(`${subject}: give both crName and crNamespace, or neither`);
  }
  return id;
}

/** What a (re)start writes over an existing row, by the row's state (see the rules at the top). */
function restartAssignments(
  row: SqlRow,
  start: Start,
  facts: readonly Assignment[],
): Assignment[] | undefined {
  const wanted = start.state ?? 'InProgress';
  const now = start.startTime ?? new Date();
  switch (stateOf(row)) {
    case 'Pending':
      return wanted === 'InProgress' ? [...facts, ['state', 'InProgress'], ['start_time', now]] : [...facts];
    case 'InProgress':
      return [...facts];
    case 'Failed':
      return [
        ...facts,
        ['state', wanted],
        ['start_time', wanted === 'InProgress' ? now : null],
        ['completion_time', null],
        ['duration_ms', null],
        ['failure_reason', null],
      ];
    default:
      return undefined;
  }
}

interface Step {
  /** For messages: "success", "progress", … */
  what: string;
  from: readonly State[];
  set: Assignment[];
  /** Columns computed from the row's own values in the same statement (e.g. a duration). */
  derived?: Derived[];
}

/** Milliseconds from the row's start_time to the time in `param` (none without a start). */
const durationSince = (param: string): string =>
  `CASE WHEN start_time IS NULL THEN NULL ELSE GREATEST(0, ROUND(EXTRACT(EPOCH FROM (${param}::timestamptz - start_time)) * 1000))::bigint END`;

class SqlCatalog implements Catalog {
  readonly description: string;
  readonly schema: Readonly<MigrationResult>;
  readonly #db: SqlDatabase;

  constructor(db: SqlDatabase, schema: MigrationResult) {
    this.#db = db;
    this.description = db.description;
    this.schema = schema;
  }

  recordBackupStarted(start: BackupStart): Promise<BackupRecord> {
    return this.#start(backupTable, start);
  }

  recordBackupProgress(backupId: string, progress: BackupProgress): Promise<BackupRecord> {
    return this.#progress(backupTable, backupId, progress);
  }

  recordBackupSucceeded(backupId: string, result: BackupSuccess = {}): Promise<BackupRecord> {
    return this.#succeed(backupTable, backupId, result);
  }

  recordBackupFailed(backupId: string, reason: string): Promise<BackupRecord> {
    return this.#fail(backupTable, backupId, reason);
  }

  markManifestMissing(backupId: string): Promise<BackupRecord> {
    return this.#transition(backupTable, backupId, {
      what: 'a missing manifest',
      from: ['Succeeded', 'ManifestMissing'],
      set: [['state', 'ManifestMissing']],
    });
  }

  markDeleted(backupId: string): Promise<BackupRecord> {
    return this.#transition(backupTable, backupId, {
      what: 'a deletion',
      from: ['Succeeded', 'Failed', 'ManifestMissing', 'Deleted'],
      set: [['state', 'Deleted']],
    });
  }

  getBackup(backupId: string): Promise<BackupRecord | undefined> {
    return this.#get(backupTable, backupId);
  }

  listBackups(filter: BackupFilter = {}): Promise<BackupRecord[]> {
    const { limit, ...where } = filter;
    return this.#list(backupTable, where, limit);
  }

  async upsertFromManifest(manifest: ManifestSummary): Promise<ManifestUpsertResult> {
    const id = requireStart(backupTable, manifest);
    const subject = `manifest of ${subjectOf(backupTable, id)}`;
    requireText(manifest.manifestPath, 'manifestPath', subject);
    requireText(manifest.manifestChecksum, 'manifestChecksum', subject);
    const { manifestPath, durationMs, ...rest } = manifest;
    const facts = encode(
      backupTable,
      {
        ...rest,
        dlManifestPath: manifestPath,
        durationMs: durationMs ?? durationOf(manifest.startTime, manifest.completionTime) ?? undefined,
      },
      subject,
    );
    const succeeded: Assignment[] = [...facts, ['state', 'Succeeded'], ['failure_reason', null]];
    return this.#write(async (tx) => {
      let row = await lockRow(tx, backupTable, id);
      if (row === undefined) {
        await assertCrFree(tx, backupTable, id, manifest);
        // a rebuilt row sorts among the others by when the backup ran, not when it was rebuilt
        const created: Assignment = ['created_at', manifest.startTime ?? manifest.completionTime];
        const inserted = await insertRow(tx, backupTable, [...succeeded, created]);
        if (inserted !== undefined) return { outcome: 'inserted', backup: decode(backupTable, inserted) };
        row = await this.#mustLock(tx, backupTable, id);
      }
      assertSameRequest(backupTable, id, row, manifest);
      if (stateOf(row) === 'Failed' || stateOf(row) === 'Deleted')
        return { outcome: 'keptFailed', backup: decode(backupTable, row) };
      if (!changes(row, succeeded)) return { outcome: 'unchanged', backup: decode(backupTable, row) };
      await assertCrFree(tx, backupTable, id, manifest);
      return {
        outcome: 'updated',
        backup: decode(backupTable, await updateRow(tx, backupTable, id, succeeded)),
      };
    });
  }

  recordRestoreStarted(start: RestoreStart): Promise<RestoreRecord> {
    return this.#start(restoreTable, start);
  }

  recordRestoreProgress(restoreId: string, progress: RestoreProgress): Promise<RestoreRecord> {
    return this.#progress(restoreTable, restoreId, progress);
  }

  recordRestoreSucceeded(restoreId: string, result: RestoreSuccess = {}): Promise<RestoreRecord> {
    return this.#succeed(restoreTable, restoreId, result);
  }

  recordRestoreFailed(restoreId: string, reason: string): Promise<RestoreRecord> {
    return this.#fail(restoreTable, restoreId, reason);
  }

  getRestore(restoreId: string): Promise<RestoreRecord | undefined> {
    return this.#get(restoreTable, restoreId);
  }

  listRestores(filter: RestoreFilter = {}): Promise<RestoreRecord[]> {
    const { limit, ...where } = filter;
    return this.#list(restoreTable, where, limit);
  }

  close(): Promise<void> {
    return this.#db.close();
  }

  /** A transaction whose unique violations (a race past the checks) become CatalogConflictError. */
  async #write<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    try {
      return await this.#db.transaction(fn);
    } catch (err) {
      if (!uniqueViolation(err)) throw err;
      const constraint = (err as { constraint?: unknown }).constraint;
      const what =
        constraint === 'unique_cr' || constraint === 'unique_restore_cr'
          ? 'custom resource (namespace/name)'
          : 'id';
      throw new CatalogConflictError(
        `another request recorded the same ${what} at the same time (${err instanceof Error ? err.message : String(err)}); ` +
          `a request is recorded once: give the new one another name.`,
      );
    }
  }

  async #mustLock(tx: SqlExecutor, table: Table<unknown>, id: string): Promise<SqlRow> {
    const row = await lockRow(tx, table, id);
    if (row !== undefined) return row;
    throw this.#notFound(table, id);
  }

  #notFound(table: Table<unknown>, id: string): NotFoundError {
    const starter = table.noun === 'backup' ? 'recordBackupStarted' : 'recordRestoreStarted';
    return new NotFoundError(
      `${subjectOf(table, id)} is not in the ${this.description}: record its start first (${starter})` +
        (table.noun === 'backup' ? ', or rebuild the catalog from the manifests' : ''),
    );
  }

  async #start<R>(table: Table<R>, start: Start): Promise<R> {
    const id = requireStart(table, start);
    const { state, startTime, ...facts } = start;
    const encoded = encode(table, facts, subjectOf(table, id));
    encode(table, { startTime }, subjectOf(table, id)); // checked here, written below
    const wanted = state ?? 'InProgress';
    const fresh: Assignment[] = [
      ...encoded,
      ['state', wanted],
      ['start_time', wanted === 'InProgress' ? (startTime ?? new Date()) : null],
    ];
    // a new id, the usual case: one INSERT (the unique constraints hold what the checks below
    // say); an id already recorded, or a custom resource recorded under another id, takes the
    // transaction below, which explains a refusal
    const inserted = await insertRow(this.#db, table, fresh).catch((err: unknown) => {
      if (uniqueViolation(err)) return undefined;
      throw err;
    });
    if (inserted !== undefined) return decode(table, inserted);
    return this.#write(async (tx) => {
      let row = await lockRow(tx, table, id);
      if (row === undefined) {
        await assertCrFree(tx, table, id, start);
        const again = await insertRow(tx, table, fresh);
        if (again !== undefined) return decode(table, again);
        // another transaction inserted the same id since our SELECT: continue on its row
        row = await this.#mustLock(tx, table, id);
      }
      assertSameRequest(table, id, row, start);
      const set = restartAssignments(row, start, encoded);
      if (set === undefined) return decode(table, row);
      await assertCrFree(tx, table, id, start);
      return decode(table, await updateRow(tx, table, id, set));
    });
  }

  async #progress<R>(table: Table<R>, id: string, progress: BackupProgress | RestoreProgress): Promise<R> {
    const facts = encode(table, progress, subjectOf(table, id));
    return await this.#transition(table, id, {
      what: 'progress',
      from: ['Pending', 'InProgress'],
      set: [...facts, ['state', 'InProgress']],
      derived: [
        { column: 'start_time', value: new Date(), sql: (p) => `COALESCE(start_time, ${p}::timestamptz)` },
      ],
    });
  }

  async #succeed<R>(table: Table<R>, id: string, result: BackupSuccess | RestoreSuccess): Promise<R> {
    const { completionTime, durationMs, ...rest } = result;
    const end = completionTime ?? new Date();
    const facts = encode(table, { ...rest, completionTime: end, durationMs }, subjectOf(table, id));
    return await this.#transition(table, id, {
      what: 'success',
      from: ['Pending', 'InProgress', 'Succeeded'],
      set: [...facts, ['state', 'Succeeded']],
      derived: durationMs === undefined ? [{ column: 'duration_ms', value: end, sql: durationSince }] : [],
    });
  }

  async #fail<R>(table: Table<R>, id: string, reason: string): Promise<R> {
    const why = truncate(requireText(reason, 'reason', subjectOf(table, id)));
    const end = new Date();
    return await this.#transition(table, id, {
      what: 'a failure',
      from: ['Pending', 'InProgress', 'Failed'],
      set: [
        ['state', 'Failed'],
        ['failure_reason', why],
        ['completion_time', end],
      ],
      derived: [{ column: 'duration_ms', value: end, sql: durationSince }],
    });
  }

  /**
   * One UPDATE whose WHERE holds the state check (atomic without a transaction: one round trip
   * instead of BEGIN, SELECT … FOR UPDATE, UPDATE, COMMIT); when it changes no row, the row is
   * read to say why.
   */
  async #transition<R>(table: Table<R>, id: string, step: Step): Promise<R> {
    requireText(id, table.key, table.noun);
    const updated = await updateWhere(this.#db, table, id, { ...step, states: step.from });
    if (updated !== undefined) return decode(table, updated);
    const row = await readRow(this.#db, table, id);
    if (row === undefined) throw this.#notFound(table, id);
    const state = stateOf(row);
    const why = typeof row.failure_reason === 'string' ? ` (${row.failure_reason})` : '';
    const hint = terminal.includes(state)
      ? `${state} is final: record a new attempt under a new ${table.noun} id`
      : step.from.includes(state)
        ? 'it changed while this was recorded: try again'
        : `only a ${table.noun} that is ${step.from.join(' or ')} can take it`;
    throw new CatalogStateError(
      `cannot record ${step.what} for ${subjectOf(table, id)}: it is ${state}${why}; ${hint}.`,
    );
  }

  async #get<R>(table: Table<R>, id: string): Promise<R | undefined> {
    const rows = await this.#db.query(`SELECT * FROM ${table.table} WHERE ${table.keyColumn} = $1`, [id]);
    return rows[0] === undefined ? undefined : decode(table, rows[0]);
  }

  async #list<R>(table: Table<R>, where: Record<string, unknown>, limit = defaultLimit): Promise<R[]> {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) {
      throw new ValidationError(
        `list of ${table.noun}s: limit must be a whole number from 1 to ${maxLimit} (got ${limit})`,
      );
    }
    const filter = encode(table, where, `list of ${table.noun}s`);
    const conditions = filter.map(([c], i) => `${c} = $${i + 1}`);
    const rows = await this.#db.query(
      `SELECT * FROM ${table.table}${conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''} ` +
        `ORDER BY created_at DESC, ${table.keyColumn} DESC LIMIT $${filter.length + 1}`,
      [...filter.map(([, v]) => v), limit],
    );
    return rows.map((row) => decode(table, row));
  }
}
