// The controller's logger: the engine's `Logger` on pino, one JSON object per line, with levels
// and child loggers that carry the request's identity (namespace, name, backupId) on every
// line. Secrets are removed three times over: the fields and message are copied through the
// SecretScrubber (by key and by registered value, errors reduced to a safe shape), pino's
// `redact` blanks well-known secret keys in anything that reaches pino directly, and the
// finished line is scrubbed once more before it is written.
import { pino, type DestinationStream, type LoggerOptions } from 'pino';
import type { Logger } from './logger.ts';
import { SecretScrubber, redactedText, sensitiveKeys } from './scrubber.ts';

export { SecretScrubber, redactedText } from './scrubber.ts';

export const logLevels = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/** What a child logger stamps on each of its lines. */
export interface LogBindings {
  namespace?: string;
  name?: string;
  backupId?: string;
  kind?: string;
  project?: string;
  [key: string]: string | number | boolean | undefined;
}

export interface StructuredLogger extends Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger whose every line also carries `bindings`. */
  child(bindings: LogBindings): StructuredLogger;
  readonly level: LogLevel;
}

export interface PinoLoggerOptions {
  /** Default: `LC2_LOG_LEVEL`, else info. */
  level?: LogLevel;
  /** The secrets to remove by value; register more on it at any time. */
  scrubber?: SecretScrubber;
  /** Where lines go (default: stdout). Anything with `write(line)`. */
  destination?: DestinationStream;
  /** Fields on every line (e.g. `{ component: 'controller' }`). */
  base?: Record<string, string>;
}

/**
 * pino `redact` paths: each sensitive key (and `Authorization`) at the top level and one level
 * down (`*.password` matches exactly one level). A safety net for objects logged on a raw pino
 * logger: the StructuredLogger's own copy already redacts these keys at any depth and in any
 * case. Deeper wildcard paths cost pino tens of microseconds per line each level.
 */
export function redactPaths(): string[] {
  const paths: string[] = [];
  for (const key of [...sensitiveKeys, 'Authorization']) {
    const plain = /^[A-Za-z_$][\w$]*$/.test(key);
    paths.push(plain ? key : `["${key}"]`, plain ? `*.${key}` : `*["${key}"]`);
  }
  return paths;
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  if (value === undefined || value === '') return fallback;
  const level = value.toLowerCase();
  if ((logLevels as readonly string[]).includes(level)) return level as LogLevel;
  throw new Error(`log level "${value}" is not one of ${logLevels.join(', ')}`);
}

/** pino's options for a logger that redacts secret keys and scrubs `scrubber`'s values. */
export function pinoOptions(
  scrubber: SecretScrubber,
  level: LogLevel,
  base?: Record<string, string>,
): LoggerOptions {
  return {
    level,
    base: { pid: process.pid, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: 'msg',
    formatters: { level: (label) => ({ level: label }) },
    // pino's own error serializer copies every enumerable property (an SDK's $response too)
    serializers: {
      err: (e: unknown) => scrubber.scrubError(e),
      error: (e: unknown) => scrubber.scrubError(e),
    },
    redact: { paths: redactPaths(), censor: redactedText },
    hooks: { streamWrite: (line) => scrubber.scrub(line) },
  };
}

type Method = 'debug' | 'info' | 'warn' | 'error';

function wrap(target: pino.Logger, scrubber: SecretScrubber): StructuredLogger {
  const emit =
    (method: Method) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (!target.isLevelEnabled(method)) return;
      const safe = fields === undefined ? {} : (scrubber.scrubValue(fields) as Record<string, unknown>);
      target[method](safe, scrubber.scrub(message));
    };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (bindings) => wrap(target.child(scrubber.scrubValue(bindings) as pino.Bindings), scrubber),
    get level() {
      return target.level as LogLevel;
    },
  };
}

/** A pino-backed Logger; `child({ namespace, name, backupId })` per request. */
export function createPinoLogger(options: PinoLoggerOptions = {}): StructuredLogger {
  const scrubber = options.scrubber ?? new SecretScrubber();
  const level = options.level ?? parseLogLevel(process.env.LC2_LOG_LEVEL);
  const config = pinoOptions(scrubber, level, options.base);
  const target = options.destination === undefined ? pino(config) : pino(config, options.destination);
  return wrap(target, scrubber);
}
