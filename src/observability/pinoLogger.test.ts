// A canary secret is planted in every place a secret can travel into a log line — the message,
// nested fields, keys, child bindings, error messages, cause chains, a connection string
// (URL-encoded), an AWS SDK error from a real request (its message and its $response) — and
// must appear in no line written.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPinoLogger, parseLogLevel, pinoOptions, redactPaths, type LogLevel } from './pinoLogger.ts';
import { SecretScrubber, registerConfigSecrets } from './scrubber.ts';
import { parseConfig } from '../config/config.ts';

const canary = 'c4n4ry-P@ss/w:rd"\\x';
const canaryKeyId = 'AKIACANARY0000000001';

function capture(level: LogLevel = 'debug', scrubber = new SecretScrubber()) {
  const lines: string[] = [];
  const logger = createPinoLogger({
    level,
    scrubber,
    destination: {
      write: (line: string) => {
        lines.push(line);
      },
    },
  });
  const records = (): Record<string, unknown>[] => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, records, scrubber };
}

function expectNoCanary(lines: string[]): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    for (const form of [canary, encodeURIComponent(canary), JSON.stringify(canary).slice(1, -1), 'c4n4ry']) {
      expect(line).not.toContain(form);
    }
    expect(line).not.toContain(canaryKeyId);
  }
}

describe('createPinoLogger', () => {
  it('writes one JSON object per line with level, time, message and fields', () => {
    const { logger, lines, records } = capture('info');
    logger.info('backup started', { project: 'retail', objects: 3 });
    logger.debug('not at info level');
    logger.warn('slow store', { latencyMs: 900 });
    logger.error('failed');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line.endsWith('\n')).toBe(true);
    const [first, second, third] = records();
    expect(first).toMatchObject({ level: 'info', msg: 'backup started', project: 'retail', objects: 3 });
    expect(typeof first?.time).toBe('string');
    expect(second).toMatchObject({ level: 'warn', latencyMs: 900 });
    expect(third).toMatchObject({ level: 'error', msg: 'failed' });
    expect(logger.level).toBe('info');
  });

  it("stamps a child's namespace, name and backupId on every line, nested children included", () => {
    const { logger, records } = capture();
    const child = logger.child({ namespace: 'proj-retail-prd', name: 'nightly', backupId: 'retail-prd-1' });
    child.info('one');
    child.child({ step: 'database' }).warn('two');
    child.debug('three');
    logger.info('parent');
    const [one, two, three, parent] = records();
    const identity = { namespace: 'proj-retail-prd', name: 'nightly', backupId: 'retail-prd-1' };
    expect(one).toMatchObject(identity);
    expect(two).toMatchObject({ ...identity, step: 'database' });
    expect(three).toMatchObject(identity);
    expect(parent).not.toHaveProperty('backupId');
  });

  it('redacts well-known secret keys at any depth even when the value is not registered', () => {
    const { logger, records } = capture();
    logger.info('config', {
      catalog: { password: 'pw-unregistered', Authorization: 'Bearer abc' },
      stores: [{ secretAccessKey: 'sk-unregistered', accessKeyId: 'AKIA-unregistered' }],
      headers: { 'x-amz-security-token': 'tok-unregistered' },
      connectionString: 'postgresql://u:pw@h/db',
    });
    const text = JSON.stringify(records());
    for (const secret of [
      'pw-unregistered',
      'Bearer abc',
      'sk-unregistered',
      'AKIA-unregistered',
      'tok-',
      'u:pw@h',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(records()[0]).toMatchObject({
      catalog: { password: '[REDACTED]', Authorization: '[REDACTED]' },
      stores: [{ secretAccessKey: '[REDACTED]' }],
    });
  });

  it('removes a registered canary from messages, fields, keys, bindings, errors and cause chains', () => {
    const { logger, lines, scrubber, records } = capture();
    expect(scrubber.add(canary)).toBe(true);
    const connection = `postgresql://backup:${encodeURIComponent(canary)}@db.internal:5432/retail`;
    logger.info(`connecting with ${canary}`, {
      nested: { deeper: [{ note: `the password is ${canary}` }] },
      [`key-${canary}`]: 1,
      connection,
    });
    logger.child({ name: `req-${canary}` }).warn('child');
    const root = new Error(`connect ECONNREFUSED ${connection}`);
    const wrapped = new Error(`catalog unreachable (password ${canary})`, { cause: root });
    logger.error('catalog', { err: wrapped });
    logger.error('thrown string', { err: `raw ${canary}` });
    logger.error('aggregate', { err: new AggregateError([new Error(canary)], 'several') });
    expectNoCanary(lines);
    const errorLine = records()[2] as { err: { message: string; cause: { message: string; stack: string } } };
    expect(errorLine.err.message).toBe('catalog unreachable (password [REDACTED])');
    expect(errorLine.err.cause.message).toBe(
      'connect ECONNREFUSED postgresql://backup:[REDACTED]@db.internal:5432/retail',
    );
    expect(errorLine.err.cause.stack).toContain('Error: connect ECONNREFUSED');
  });

  it('handles cycles, depth, binary data and odd values without throwing', () => {
    const { logger, records } = capture();
    const cyclic: Record<string, unknown> = { name: 'a' };
    cyclic.self = cyclic;
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20; i++) deep = { deep };
    logger.info('odd', {
      cyclic,
      deep,
      buffer: Buffer.from('secret bytes'),
      big: 10n,
      when: new Date(0),
      fn: () => 1,
      map: new Map([['password', 'x']]),
    });
    const [line] = records();
    expect(line).toMatchObject({
      cyclic: { name: 'a', self: '[Circular]' },
      buffer: '[12 bytes]',
      big: '10',
      when: '1970-01-01T00:00:00.000Z',
      map: { password: '[REDACTED]' },
    });
    expect(JSON.stringify(line)).toContain('[Truncated]');
  });
});

describe('an AWS SDK error from a real request', () => {
  let server: Server;
  let endpoint = '';

  beforeAll(async () => {
    // an S3-compatible endpoint that refuses every request, echoing what a careless server
    // (or a proxy) might: the Authorization header in a response header and the key id in
    // the error message
    server = createServer((req, res) => {
      res.writeHead(403, {
        'content-type': 'application/xml',
        'x-echo-authorization': req.headers.authorization ?? '',
        'x-amz-request-id': 'REQ123',
      });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The access key ${canaryKeyId} with secret ${canary} does not exist</Message><RequestId>REQ123</RequestId></Error>`,
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('is logged with its code and request id, without the canary or the $response', async () => {
    const s3 = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: canaryKeyId, secretAccessKey: canary },
    });
    const err = await s3.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' })).then(
      () => undefined,
      (e: unknown) => e,
    );
    s3.destroy();
    // the raw error does carry the canary, in its message and in $response's headers
    expect((err as Error).message).toContain(canary);
    const response = (err as { $response?: { headers: Record<string, string> } }).$response;
    expect(response?.headers['x-echo-authorization']).toContain(canaryKeyId);

    const { logger, lines, scrubber, records } = capture();
    scrubber.add(canary);
    scrubber.add(canaryKeyId);
    logger.warn('store request failed', { err, bucket: 'b' });
    logger.error(`giving up: ${String(err)}`);
    expectNoCanary(lines);
    const [line] = records() as [{ err: Record<string, unknown> }];
    expect(line.err).toMatchObject({ type: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } });
    expect(line.err).not.toHaveProperty('$response');
    expect(JSON.stringify(line)).not.toContain('x-echo-authorization');
  });
});

describe('pinoOptions on a raw pino logger', () => {
  it('redacts secret keys at the top level and one level down, and scrubs the finished line', () => {
    const lines: string[] = [];
    const scrubber = new SecretScrubber();
    scrubber.add(canary);
    const raw = pino(pinoOptions(scrubber, 'info'), {
      write: (line: string) => {
        lines.push(line);
      },
    });
    raw.info(
      {
        password: 'p0',
        headers: { Authorization: 'p1', 'x-amz-security-token': 'p2' },
        store: { secretAccessKey: 'p3' },
        note: canary,
      },
      `raw ${canary}`,
    );
    raw.error(
      { err: Object.assign(new Error(`boom ${canary}`), { $response: { headers: { a: 'p4' } } }) },
      'e',
    );
    expectNoCanary(lines);
    for (const line of lines) {
      for (const value of ['"p0"', '"p1"', '"p2"', '"p3"', '"p4"', '$response'])
        expect(line).not.toContain(value);
    }
    expect(redactPaths()).toContain('*.password');
  });
});

describe('parseLogLevel', () => {
  it('accepts the levels in any case and refuses others', () => {
    expect(parseLogLevel(undefined)).toBe('info');
    expect(parseLogLevel('DEBUG')).toBe('debug');
    expect(() => parseLogLevel('verbose')).toThrow(
      'log level "verbose" is not one of debug, info, warn, error, silent',
    );
  });
});

describe('SecretScrubber', () => {
  it('ignores values too short to match safely and replaces the longest secret first', () => {
    const scrubber = new SecretScrubber();
    expect(scrubber.add('abc')).toBe(false);
    expect(scrubber.add(undefined)).toBe(false);
    expect(scrubber.size).toBe(0);
    scrubber.add('hunter2');
    scrubber.add('hunter2-extended');
    expect(scrubber.scrub('a hunter2-extended b hunter2 c abc')).toBe('a [REDACTED] b [REDACTED] c abc');
    expect(scrubber.scrubError('plain hunter2')).toEqual({ message: 'plain [REDACTED]' });
  });

  it("registers the configuration's resolved secrets and skips unresolvable ones", () => {
    const config = parseConfig(
      {
        catalogPassword: { env: 'CAT_PW' },
        stores: {
          minio: { type: 's3', accessKeyId: { env: 'MINIO_KEY' }, secretAccessKey: { env: 'MINIO_SECRET' } },
        },
        projects: {
          retail: {
            databases: { db: { host: 'h', database: 'd', user: 'u', password: { env: 'MISSING' } } },
          },
        },
      },
      'test',
    );
    const scrubber = new SecretScrubber();
    const env = { CAT_PW: 'catalog-pw-1', MINIO_KEY: 'minio-key-1', MINIO_SECRET: 'minio-secret-1' };
    expect(registerConfigSecrets(scrubber, config, env).sort()).toEqual([
      'catalogPassword',
      'stores.minio.accessKeyId',
      'stores.minio.secretAccessKey',
    ]);
    expect(scrubber.scrub('catalog-pw-1 minio-key-1 minio-secret-1')).toBe(
      '[REDACTED] [REDACTED] [REDACTED]',
    );
  });
});
