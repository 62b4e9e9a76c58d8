// The real OTLP/HTTP exporter sends to a collector stand-in (a node:http server on loopback)
// and the test reads what arrived: span names, parent/child links across awaits, the service
// name, error status and a scrubbed exception.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SecretScrubber } from './scrubber.ts';
import { startTracing, tracesUrl, withSpan, type Tracing } from './tracing.ts';

interface OtlpValue {
  stringValue?: string;
}
interface OtlpSpan {
  name: string;
  spanId: string;
  parentSpanId?: string;
  traceId: string;
  status?: { code?: number; message?: string };
  attributes?: { key: string; value: OtlpValue }[];
  events?: { name: string; attributes?: { key: string; value: OtlpValue }[] }[];
}
interface OtlpRequest {
  resourceSpans: {
    resource: { attributes: { key: string; value: OtlpValue }[] };
    scopeSpans: { spans: OtlpSpan[] }[];
  }[];
}

let collector: Server;
let base = '';
const received: { path: string; contentType: string; body: OtlpRequest }[] = [];

beforeAll(async () => {
  collector = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        contentType: req.headers['content-type'] ?? '',
        body: JSON.parse(body) as OtlpRequest,
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => collector.close(resolve));
});

let tracing: Tracing | undefined;
afterEach(async () => {
  await tracing?.shutdown();
  tracing = undefined;
  received.length = 0;
});

const spans = (): OtlpSpan[] =>
  received.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)));

const attr = (list: { key: string; value: OtlpValue }[] | undefined, key: string): string | undefined =>
  list?.find((a) => a.key === key)?.value.stringValue;

/** What the collector received for the nested spans of the first test. */
function expectExported(): void {
  expect(received.length).toBeGreaterThan(0);
  expect(received[0]).toMatchObject({ path: '/v1/traces', contentType: 'application/json' });
  const resource = received[0]?.body.resourceSpans[0]?.resource.attributes;
  expect(attr(resource, 'service.name')).toBe('lc2-backup-test');

  const byName = new Map(spans().map((s) => [s.name, s]));
  expect([...byName.keys()].sort()).toEqual(['backup', 'backup.database', 'provider.s3.copy']);
  const span = (name: string): OtlpSpan => {
    const found = byName.get(name);
    if (found === undefined) throw new Error(`span ${name} was not exported`);
    return found;
  };
  const [root, db, copy] = [span('backup'), span('backup.database'), span('provider.s3.copy')];
  expect(root.parentSpanId ?? '').toBe('');
  expect(db.parentSpanId).toBe(root.spanId);
  expect(copy.parentSpanId).toBe(root.spanId);
  expect(new Set(spans().map((s) => s.traceId)).size).toBe(1);
  expect(attr(root.attributes, 'lc2.project')).toBe('retail');
  expect(root.status).toMatchObject({ code: 1 }); // OK
  expect(copy.status).toMatchObject({ code: 2, message: 'copy failed for postgresql://u:[REDACTED]@db' });
  const exception = copy.events?.find((e) => e.name === 'exception');
  expect(attr(exception?.attributes, 'exception.message')).toBe(
    'copy failed for postgresql://u:[REDACTED]@db',
  );
  expect(JSON.stringify(received)).not.toContain('hunter2-canary');
}

describe('startTracing with an endpoint', () => {
  it('exports spans over OTLP/HTTP: names, nesting across awaits, service name, errors scrubbed', async () => {
    const scrubber = new SecretScrubber();
    scrubber.add('hunter2-canary');
    tracing = await startTracing({
      endpoint: base,
      serviceName: 'lc2-backup-test',
      env: {},
      scrub: (t) => scrubber.scrub(t),
    });
    expect(tracing).toMatchObject({ enabled: true, url: `${base}/v1/traces` });

    await withSpan('backup', { 'lc2.project': 'retail' }, async () => {
      await withSpan('backup.database', {}, async () => {
        await sleep(5);
      });
      await sleep(1);
      await expect(
        withSpan('provider.s3.copy', { 'lc2.bucket': 'b' }, () => {
          throw new Error('copy failed for postgresql://u:hunter2-canary@db');
        }),
      ).rejects.toThrow('hunter2-canary');
    });
    await tracing.flush();
    expectExported();
  });

  it('reads OTEL_EXPORTER_OTLP_ENDPOINT when no endpoint is configured', async () => {
    tracing = await startTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${base}/` } });
    expect(tracing.url).toBe(`${base}/v1/traces`);
    await withSpan('from-env', {}, () => 1);
    await tracing.flush();
    expect(spans().map((s) => s.name)).toEqual(['from-env']);
    expect(attr(received[0]?.body.resourceSpans[0]?.resource.attributes, 'service.name')).toBe('lc2-backup');
  });

  it('refuses a second start while one is running', async () => {
    tracing = await startTracing({ endpoint: base, env: {} });
    await expect(startTracing({ endpoint: base, env: {} })).rejects.toThrow('tracing: already started');
  });
});

describe('startTracing without an endpoint', () => {
  it('is a no-op: spans run, nothing is sent', async () => {
    tracing = await startTracing({ env: {} });
    expect(tracing).toMatchObject({ enabled: false, url: undefined });
    expect(await withSpan('quiet', {}, () => 42)).toBe(42);
    await expect(
      withSpan('quiet-failure', {}, () => {
        throw new Error('still thrown');
      }),
    ).rejects.toThrow('still thrown');
    await tracing.flush();
    await sleep(50);
    expect(received).toEqual([]);
  });
});

describe('tracesUrl', () => {
  it('prefers the configured endpoint, then the traces variable, then the generic one', () => {
    const env = {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/custom/path',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://generic:4318',
    };
    expect(tracesUrl('http://collector:4318/', env)).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl(undefined, env)).toBe('http://traces:4318/custom/path');
    expect(tracesUrl('', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://generic:4318' })).toBe(
      'http://generic:4318/v1/traces',
    );
    expect(tracesUrl(undefined, {})).toBeUndefined();
  });

  it('refuses what is not an http(s) URL, naming the setting', () => {
    expect(() => tracesUrl('grpc://collector:4317', {})).toThrow(
      'tracing: endpoint "grpc://collector:4317" must be an http:// or https:// URL (OTLP over HTTP)',
    );
    expect(() => tracesUrl(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(
      'tracing: OTEL_EXPORTER_OTLP_ENDPOINT "not a url" is not a URL',
    );
  });
});
