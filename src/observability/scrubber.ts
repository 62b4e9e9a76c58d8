// Keeping secrets out of logs, Events, status messages and span errors. Two layers:
//   - by key: a value under a well-known secret key (password, secretAccessKey, authorization…)
//     is replaced wherever it sits in a structure;
//   - by value: the secrets this process has resolved (registered at run time) are replaced
//     wherever they occur inside any string, also URL-encoded (connection strings) and
//     JSON-escaped (a finished log line).
// Errors are reduced to a safe shape: name, message, code, stack, request id and the cause
// chain; everything else an SDK hangs on an error (`$response` with its headers, `config`,
// `request`) is dropped, since any of it can carry a signature or a token.
import { resolveSecret, type Config, type SecretRef } from '../config/config.ts';

export const redactedText = '[REDACTED]';

/** Keys whose values are secrets wherever they appear (compared without case, '-' or '_'). */
export const sensitiveKeys = [
  'password',
  'passwd',
  'catalogPassword',
  'secret',
  'clientSecret',
  'secretAccessKey',
  'accessKeyId',
  'sessionToken',
  'securityToken',
  'x-amz-security-token',
  'token',
  'accessToken',
  'refreshToken',
  'idToken',
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'connectionString',
  'apiKey',
  'privateKey',
  'credentials',
] as const;

const normalizeKey = (key: string): string => key.toLowerCase().replace(/[-_]/g, '');
const sensitive = new Set(sensitiveKeys.map(normalizeKey));

export function isSensitiveKey(key: string): boolean {
  return sensitive.has(normalizeKey(key));
}

/** Secrets shorter than this are not matched by value (they would blank out ordinary words). */
export const minSecretLength = 4;

const maxDepth = 10;

/** Properties of an error worth logging; anything else on an error object is dropped. */
const errorFields = ['code', 'errno', 'syscall', 'reason', '$fault', 'Code'] as const;

export class SecretScrubber {
  readonly #secrets = new Set<string>();
  #ordered: string[] = [];

  /**
   * Registers a secret value (with its URL-encoded and JSON-escaped forms). Returns false for a
   * value too short to match safely (under `minSecretLength` characters), which is not added.
   */
  add(value: string | undefined): boolean {
    if (value === undefined || value.length < minSecretLength) return false;
    const forms = [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)];
    for (const form of forms) this.#secrets.add(form);
    // longest first, so a secret that contains another is replaced whole
    this.#ordered = [...this.#secrets].sort((a, b) => b.length - a.length);
    return true;
  }

  /** How many distinct forms are registered (0 when none). */
  get size(): number {
    return this.#secrets.size;
  }

  /** The text with every registered secret replaced by [REDACTED]. */
  scrub(text: string): string {
    let out = text;
    for (const secret of this.#ordered) {
      if (out.includes(secret)) out = out.split(secret).join(redactedText);
    }
    return out;
  }

  /**
   * A JSON-safe copy of `value`: strings scrubbed, values under sensitive keys redacted, errors
   * reduced to their safe shape (with their cause chain), cycles and depth bounded.
   */
  scrubValue(value: unknown): unknown {
    return this.#copy(value, 0, new WeakSet());
  }

  /** The safe shape of an error (or of anything thrown), scrubbed. */
  scrubError(err: unknown): Record<string, unknown> {
    const copied = this.#copy(err, 0, new WeakSet());
    return copied !== null && typeof copied === 'object' && !Array.isArray(copied)
      ? (copied as Record<string, unknown>)
      : { message: copied };
  }

  #primitive(value: unknown): unknown {
    if (typeof value === 'string') return this.scrub(value);
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'function' || typeof value === 'symbol') return undefined;
    return value;
  }

  #copy(value: unknown, depth: number, seen: WeakSet<object>): unknown {
    if (value === null || typeof value !== 'object') return this.#primitive(value);
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
    if (ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
    if (seen.has(value)) return '[Circular]';
    if (depth >= maxDepth) return '[Truncated]';
    seen.add(value);
    try {
      if (value instanceof Error) return this.#error(value, depth, seen);
      if (Array.isArray(value)) return value.map((v: unknown) => this.#copy(v, depth + 1, seen));
      if (value instanceof Map) return this.#entries([...value.entries()], depth, seen);
      if (value instanceof Set) return [...value].map((v: unknown) => this.#copy(v, depth + 1, seen));
      return this.#entries(Object.entries(value), depth, seen);
    } finally {
      seen.delete(value);
    }
  }

  #entries(entries: [unknown, unknown][], depth: number, seen: WeakSet<object>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [rawKey, v] of entries) {
      const key = this.scrub(String(rawKey));
      out[key] = isSensitiveKey(String(rawKey)) ? redactedText : this.#copy(v, depth + 1, seen);
    }
    return out;
  }

  #error(err: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
    const out: Record<string, unknown> = { type: err.name, message: this.scrub(err.message) };
    const fields = err as unknown as Record<string, unknown>;
    for (const field of errorFields) {
      const v = fields[field];
      if (typeof v === 'string' || typeof v === 'number') out[field] = this.#copy(v, depth + 1, seen);
    }
    // AWS SDK v3: status and request id are useful; $response (headers, body) is not logged
    const meta = fields.$metadata as Record<string, unknown> | undefined;
    if (meta !== undefined && typeof meta === 'object') {
      out.$metadata = this.#copy(
        { httpStatusCode: meta.httpStatusCode, requestId: meta.requestId, attempts: meta.attempts },
        depth + 1,
        seen,
      );
    }
    if (err.stack !== undefined) out.stack = this.scrub(err.stack);
    if (err instanceof AggregateError) {
      out.errors = (err.errors as unknown[]).map((e) => this.#copy(e, depth + 1, seen));
    }
    if (err.cause !== undefined) out.cause = this.#copy(err.cause, depth + 1, seen);
    return out;
  }
}

function isSecretRef(value: unknown): value is SecretRef {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  const v = value as Record<string, unknown>;
  return keys.length === 1 && (typeof v.env === 'string' || typeof v.file === 'string');
}

function collectRefs(value: unknown, path: string, out: [string, SecretRef][]): void {
  if (isSecretRef(value)) {
    out.push([path, value]);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value)) collectRefs(v, path === '' ? k : `${path}.${k}`, out);
}

/**
 * Resolves every secret the configuration references (`{ env }` / `{ file }`) and registers
 * its value. A reference that cannot be resolved now is skipped (it fails where it is used).
 * Returns the configuration paths whose secrets were registered.
 */
export function registerConfigSecrets(
  scrubber: SecretScrubber,
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const refs: [string, SecretRef][] = [];
  collectRefs(config, '', refs);
  const registered: string[] = [];
  for (const [path, ref] of refs) {
    try {
      if (scrubber.add(resolveSecret(ref, path, env))) registered.push(path);
    } catch {
      // unresolvable now: whoever uses it reports the error
    }
  }
  return registered;
}
