// Named error classes. The CLI maps each to an exit code (src/cli); messages say what was
// wrong, which field or object, and what to do.

/** Bad input from the user: a request, a flag, the configuration. Exit code 2. */
export class ValidationError extends Error {
  override name = 'ValidationError';
}

/** A request names something its project may not touch. Exit code 3. */
export class PolicyError extends Error {
  override name = 'PolicyError';
}

/** A bucket, object, backup or database that does not exist. Exit code 4. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** A failure that a retry may cure: throttling, 5xx, a reset connection. */
export class RetryableError extends Error {
  override name = 'RetryableError';
}

/** The service asked us to slow down (S3 SlowDown, HTTP 503/429): retry, after a longer wait. */
export class ThrottledError extends RetryableError {
  override name = 'ThrottledError';
}

/** Verification found stored data that does not match its manifest. Exit code 5. */
export class IntegrityError extends Error {
  override name = 'IntegrityError';
}

export function isRetryable(err: unknown): boolean {
  if (err instanceof RetryableError) return true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE' || code === 'ECONNREFUSED';
}
