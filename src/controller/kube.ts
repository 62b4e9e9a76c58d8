// Small facts about talking to the API server that several controller files need.

/** The HTTP status of a failed client-node call, if it has one. */
export function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * A MicroTime (Lease times) wants six fractional digits; client-node would send a Date with
 * three (and the API server refuses it), but passes a string through unchanged.
 */
export function microTime(at: Date | string = new Date()): Date {
  // a MicroTime read back from the API server may arrive as its string, already in the format
  if (typeof at === 'string' && /\.\d{6}Z$/.test(at)) return at as unknown as Date;
  const date = typeof at === 'string' ? new Date(at) : at;
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}
