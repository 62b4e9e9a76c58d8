// Error classes → exit codes, in one place. Documented in the README.
import { IntegrityError, NotFoundError, PolicyError, ValidationError } from '../errors/index.ts';

export const exitCodes = {
  ok: 0,
  failure: 1,
  invalid: 2,
  policy: 3,
  notFound: 4,
  integrity: 5,
  interrupted: 130,
} as const;

export function exitCodeOf(err: unknown): number {
  if (err instanceof ValidationError) return exitCodes.invalid;
  if (err instanceof PolicyError) return exitCodes.policy;
  if (err instanceof NotFoundError) return exitCodes.notFound;
  if (err instanceof IntegrityError) return exitCodes.integrity;
  return exitCodes.failure;
}
