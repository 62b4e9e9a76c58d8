// Errors of the history catalog. They live here rather than in src/errors because only catalog
// callers (the engine's bookkeeping, `lc2-backup catalog …`) need to tell them apart.

/**
 * The catalog cannot be reached or opened: connection refused, authentication failed, or an
 * embedded catalog already open in another process. The message names host, port, database
 * and user (or the directory) and never the password. `code` is the underlying code
 * (ECONNREFUSED, 28P01, …) so `isRetryable` from src/errors can classify it.
 */
export class CatalogUnavailableError extends Error {
  override name = 'CatalogUnavailableError';
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

/** The catalog's schema is newer than this build knows, or a migration failed (and was rolled back). */
export class CatalogSchemaError extends Error {
  override name = 'CatalogSchemaError';
}

/**
 * A recorded backup or restore is in a state that does not allow the requested change, e.g.
 * recording success for a backup already recorded as Failed. Terminal states never change
 * silently: the caller must decide (usually: start a new backup id).
 */
export class CatalogStateError extends Error {
  override name = 'CatalogStateError';
}

/**
 * The request collides with another record: the same backup id recorded for another project or
 * environment, or a custom resource (namespace/name) already recorded under another id.
 */
export class CatalogConflictError extends Error {
  override name = 'CatalogConflictError';
}
