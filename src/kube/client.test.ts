import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, KubeError } from './client.ts';

// The HTTP plumbing only (paths, bodies, errors), against a local HTTP server; what the API
// server does with the calls is tested on the real one (client.int.test.ts).
describe('KubeClient over HTTP', () => {
  const seen: string[] = [];
  const big = { items: Array.from({ length: 5000 }, (_, i) => ({ name: `item-${i}`, pad: 'x'.repeat(40) })) };
  let server: http.Server;
  let base = '';

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
      res.setHeader('content-type', 'application/json');
      if (req.url?.includes('/cut') === true) {
        // half an answer, then the connection goes
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"partial":');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      if (req.url?.includes('/missing') === true) {
        res.statusCode = 404;
        res.end(
          JSON.stringify({ kind: 'Status', reason: 'NotFound', message: 'things "missing" not found' }),
        );
        return;
      }
      // a large answer arrives in many chunks
      res.end(JSON.stringify(req.url?.includes('/big') === true ? big : { ok: true }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.close();
  });

  const client = (url: string): KubeClient =>
    new KubeClient({
      server: url,
      insecureSkipTLSVerify: false,
      credentials: () => Promise.resolve({ token: 't' }),
      source: 'test',
    });

  it("keeps the server URL's path prefix (a proxy's) and the query", async () => {
    const kube = client(`${base}/k8s/clusters/c-1`);
    await expect(
      kube.request('GET', '/api/v1/namespaces', { query: { labelSelector: 'a=b', limit: 5 } }),
    ).resolves.toEqual({ ok: true });
    expect(seen.at(-1)).toBe('GET /k8s/clusters/c-1/api/v1/namespaces?labelSelector=a%3Db&limit=5');
    kube.close();
  });

  it('reads an answer of many chunks whole, and an error with its code and message', async () => {
    const kube = client(base);
    await expect(kube.request('GET', '/big')).resolves.toEqual(big);
    // get: a 404 is "not there"
    await expect(kube.get('/missing/x')).resolves.toBeUndefined();
    const failed = await kube.request('DELETE', '/missing/x').catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(KubeError);
    expect((failed as KubeError).code).toBe(404);
    expect((failed as KubeError).message).toMatch(
      /DELETE \/missing\/x: 404 NotFound: things "missing" not found/,
    );
    kube.close();
  });

  it('fails a call whose connection closes in the middle of the answer', async () => {
    const kube = client(base);
    await expect(kube.request('POST', '/cut', { body: {} })).rejects.toThrow(
      /POST \/cut on http:\/\/127\.0\.0\.1:\d+: /,
    );
    kube.close();
  });
});
