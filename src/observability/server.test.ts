import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.ts';
import { SecretScrubber } from './scrubber.ts';
import { allOf, startObservabilityServer, type ObservabilityServer, type Readiness } from './server.ts';

const servers: ObservabilityServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(
  readiness: () => Readiness | Promise<Readiness>,
  extra: { readinessTimeoutMs?: number; scrub?: (t: string) => string } = {},
) {
  const metrics = createMetrics();
  const server = await startObservabilityServer({
    port: 0,
    host: '127.0.0.1',
    registry: metrics.registry,
    readiness,
    ...extra,
  });
  servers.push(server);
  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`, init);
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
  };
  return { server, metrics, get };
}

describe('startObservabilityServer', () => {
  it('serves /metrics from the registry, with what the controller recorded', async () => {
    const { server, metrics, get } = await start(() => ({ ready: true }));
    expect(server.port).toBeGreaterThan(0);
    metrics.requestFinished({ kind: 'backup', state: 'Succeeded', project: 'retail' });
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain(
      'lc2_backup_requests_total{kind="backup",state="Succeeded",project="retail"} 1',
    );
    expect(res.body).toContain('process_cpu_user_seconds_total');
  });

  it('answers /healthz with 200 even while not ready', async () => {
    const { get } = await start(() => ({ ready: false, reasons: ['informers have not synced'] }));
    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
  });

  it('answers /readyz from the readiness callback, saying why not', async () => {
    let synced = false;
    const { get } = await start(
      allOf({
        informers: () => synced || 'BackupRequest informer has not synced',
        catalog: () => true,
      }),
    );
    expect(await get('/readyz')).toMatchObject({
      status: 503,
      body: 'not ready\ninformers: BackupRequest informer has not synced\n',
    });
    synced = true;
    expect(await get('/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
  });

  it('is not ready when the callback throws or hangs, and scrubs the reason', async () => {
    const scrubber = new SecretScrubber();
    scrubber.add('hunter2-secret');
    const failing = await start(
      allOf({
        catalog: () => {
          throw new Error('connect to postgresql://u:hunter2-secret@db failed');
        },
      }),
      { scrub: (t) => scrubber.scrub(t) },
    );
    expect(await failing.get('/readyz')).toMatchObject({
      status: 503,
      body: 'not ready\ncatalog: connect to postgresql://u:[REDACTED]@db failed\n',
    });
    const hanging = await start(() => new Promise<Readiness>(() => undefined), { readinessTimeoutMs: 50 });
    expect(await hanging.get('/readyz')).toMatchObject({
      status: 503,
      body: 'not ready\nreadiness check did not answer within 50 ms\n',
    });
    const rejecting = await start(() => Promise.reject(new Error('boom')));
    expect((await rejecting.get('/readyz')).body).toBe('not ready\nreadiness check failed: boom\n');
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const { get } = await start(() => ({ ready: true }));
    expect(await get('/')).toMatchObject({ status: 404 });
    expect(await get('/metrics', { method: 'POST' })).toMatchObject({ status: 405 });
  });

  it('reports a port in use clearly, and frees its port on close', async () => {
    const { server } = await start(() => ({ ready: true }));
    await expect(
      startObservabilityServer({
        port: server.port,
        host: '127.0.0.1',
        registry: createMetrics().registry,
        readiness: () => ({ ready: true }),
      }),
    ).rejects.toThrow(`observability server: cannot listen on port ${server.port}: listen EADDRINUSE`);
    const port = server.port;
    await servers.splice(0).map((s) => s.close())[0];
    const again = await startObservabilityServer({
      port,
      host: '127.0.0.1',
      registry: createMetrics().registry,
      readiness: () => ({ ready: true }),
    });
    servers.push(again);
    expect(again.port).toBe(port);
  });
});
