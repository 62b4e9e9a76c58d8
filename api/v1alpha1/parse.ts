// Turning user input (YAML/JSON text or an object) into a validated resource, with errors that
// name the field by its dotted path, say what is allowed and show what was given.
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../../src/errors/index.ts';
import { BackupRequest } from './backupRequest.ts';
import { BackupSchedule } from './backupSchedule.ts';
import { apiVersion } from './common.ts';
import { RestoreRequest } from './restoreRequest.ts';

export const kinds = { BackupRequest, RestoreRequest, BackupSchedule } as const;
export type KindName = keyof typeof kinds;
export type Resource<K extends KindName> = z.infer<(typeof kinds)[K]>;

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('');
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const p of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[p];
  }
  return value;
}

// Walks wrappers (optional, default, pipe) and objects to find which keys an object accepts.
function allowedKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.core.$ZodType = schema;
  const unwrap = (): void => {
    for (;;) {
      const def = current._zod.def as { innerType?: z.core.$ZodType; in?: z.core.$ZodType };
      if (def.innerType) current = def.innerType;
      else if (def.in) current = def.in;
      else return;
    }
  };
  unwrap();
  for (const p of path) {
    const def = current._zod.def as { shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType };
    const next = typeof p === 'number' ? def.element : def.shape?.[String(p)];
    if (next === undefined) return [];
    current = next;
    unwrap();
  }
  const shape = (current._zod.def as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

function describeIssue(schema: z.ZodType, issue: z.core.$ZodIssue, input: unknown): string[] {
  const where = pathOf(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeys(schema, issue.path).join(', ');
    return issue.keys.map(
      (k) =>
        `${pathOf([...issue.path, k])}: unknown field (allowed in ${where || 'the top level'}: ${allowed})`,
    );
  }
  const given = valueAt(input, issue.path);
  const got = given === undefined ? 'missing' : `got ${JSON.stringify(given)}`;
  let message = issue.message;
  if (issue.code === 'invalid_value')
    message = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (issue.code === 'invalid_type' && given === undefined) message = 'is required';
  return [`${where || '(document)'}: ${message} (${got})`];
}

/** Validates an object against a schema; on failure throws one ValidationError listing every problem. */
export function validate<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.flatMap((issue) => describeIssue(schema, issue, input));
  throw new ValidationError(`${what} is invalid:\n  ${lines.join('\n  ')}`);
}

/** Parses one resource of the expected kind from YAML or JSON text. */
export function parseResource<K extends KindName>(kind: K, text: string, source = 'input'): Resource<K> {
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  if (docs.length !== 1) {
    throw new ValidationError(`${source}: expected exactly one ${kind} document, found ${docs.length}`);
  }
  const doc = docs[0];
  if (doc === undefined || doc.errors.length > 0) {
    throw new ValidationError(`${source}: not valid YAML: ${doc?.errors[0]?.message ?? 'empty document'}`);
  }
  const input: unknown = doc.toJS();
  const actualKind = (input as { kind?: unknown } | null)?.kind;
  if (actualKind !== kind) {
    throw new ValidationError(
      `${source}: kind: expected "${kind}" (got ${JSON.stringify(actualKind ?? null)})`,
    );
  }
  return validate(kinds[kind], input, `${source} (${kind})`) as Resource<K>;
}

/** Builds and validates a resource from its spec, as the CLI, the demo and tests make requests. */
export function buildResource<K extends KindName>(
  kind: K,
  spec: unknown,
  metadata: Record<string, unknown> = {},
  what = kind as string,
): Resource<K> {
  return validate(kinds[kind], { apiVersion, kind, metadata, spec }, what) as Resource<K>;
}
