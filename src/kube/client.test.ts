import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { selfSignedCertificate } from '../../test/env/certificate.ts';
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

// Over TLS the client offers h2 in ALPN, as the API server does: its calls are streams of one
// connection; a server that answers in HTTP/1.1 keeps it on HTTP/1.1; a GOAWAY moves it to a new
// connection, and the calls the server refused unprocessed are sent again (once each processed).
describe('KubeClient over HTTPS', () => {
  const serverName = 'kube-test.invalid';
  const certificate = selfSignedCertificate(serverName);
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  const client = (url: string, options: ConstructorParameters<typeof KubeClient>[1] = {}): KubeClient => {
    const kube = new KubeClient(
      {
        server: url,
        ca: Buffer.from(certificate.cert),
        tlsServerName: serverName,
        insecureSkipTLSVerify: false,
        credentials: () => Promise.resolve({ token: 't' }),
        source: 'test',
      },
      options,
    );
    closers.push(() => {
      kube.close();
    });
    return kube;
  };
  const listen = async (server: http2.Http2SecureServer | https.Server): Promise<string> => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const readBody = (stream: http2.ServerHttp2Stream): Promise<string> =>
    new Promise((resolve) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });

  it('sends its calls as streams of one HTTP/2 connection', async () => {
    const server = http2.createSecureServer({ ...certificate, allowHTTP1: false });
    let connections = 0;
    const seen: string[] = [];
    server.on('session', () => connections++);
    server.on('stream', (stream, headers) => {
      const path = String(headers[':path']);
      seen.push(`${String(headers[':method'])} ${path} ${String(headers.authorization)}`);
      void readBody(stream).then((body) => {
        if (path.includes('/missing')) {
          stream.respond({ ':status': 404, 'content-type': 'application/json' });
          stream.end(JSON.stringify({ kind: 'Status', reason: 'NotFound', message: 'things "x" not found' }));
          return;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify(path.includes('/big') ? { pad: 'y'.repeat(300_000) } : { path, body }));
      });
    });
    const kube = client(`${await listen(server)}/prefix`);
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        kube.request<{ path: string; body: string }>('POST', `/api/v1/things`, {
          query: { n: i },
          body: { n: i },
        }),
      ),
    );
    expect(answers.map((a) => a.path)).toEqual(answers.map((_, i) => `/prefix/api/v1/things?n=${i}`));
    expect(answers.map((a) => JSON.parse(a.body) as unknown)).toEqual(answers.map((_, i) => ({ n: i })));
    await expect(kube.request('GET', '/big')).resolves.toEqual({ pad: 'y'.repeat(300_000) });
    await expect(kube.get('/missing/x')).resolves.toBeUndefined();
    await expect(kube.request('DELETE', '/missing/x')).rejects.toThrow(
      /DELETE \/missing\/x: 404 NotFound: things "x" not found/,
    );
    expect(connections).toBe(1);
    expect(seen[0]).toBe('POST /prefix/api/v1/things?n=0 Bearer t');
  });

  it('stays on HTTP/1.1 when the server does not choose h2', async () => {
    const versions: string[] = [];
    const server = https.createServer(certificate, (req, res) => {
      versions.push(req.httpVersion);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url }));
    });
    const kube = client(await listen(server));
    await expect(kube.request('GET', '/api/v1/a')).resolves.toEqual({ url: '/api/v1/a' });
    await Promise.all(Array.from({ length: 5 }, () => kube.request('GET', '/api/v1/b')));
    expect(versions).toEqual(Array.from({ length: 6 }, () => '1.1'));
  });

  it('after a GOAWAY sends the refused calls again on a new connection, each processed once', async () => {
    const server = http2.createSecureServer(certificate);
    const processed: number[] = [];
    let sessions = 0;
    let refused = 0;
    server.on('session', (session) => {
      // the first connection answers one call, then goes away: the rest are refused unprocessed
      const first = sessions++ === 0;
      let draining = false;
      session.on('stream', (stream) => {
        if (draining) {
          // the server's side of a refused stream ends in an error too
          stream.on('error', () => undefined);
          refused++;
          stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
          return;
        }
        if (first) draining = true;
        void readBody(stream).then((body) => {
          processed.push((JSON.parse(body) as { n: number }).n);
          stream.respond({ ':status': 201, 'content-type': 'application/json' });
          stream.end(body);
          if (first) session.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
        });
      });
    });
    const kube = client(await listen(server));
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, n) =>
        kube.request<{ n: number }>('POST', '/api/v1/things', { body: { n } }),
      ),
    );
    expect(answers.map((a) => a.n)).toEqual(Array.from({ length: 10 }, (_, n) => n));
    expect(processed.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, n) => n));
    expect(sessions).toBe(2);
    expect(refused).toBeGreaterThan(0);
  });

  it('drops a connection that went silent: a timed-out call PINGs it, the next call opens a new one', async () => {
    const server = http2.createSecureServer(certificate);
    let sessions = 0;
    server.on('session', () => sessions++);
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ ok: true }));
    });
    const port = Number(new URL(await listen(server)).port);
    // a TCP relay whose connections can go silent, as over a network path that died
    const relayed: { silent: boolean }[] = [];
    const relay = net.createServer((downstream) => {
      const state = { silent: false };
      relayed.push(state);
      const upstream = net.connect(port, '127.0.0.1');
      downstream.on('data', (data: Buffer) => state.silent || upstream.write(data));
      upstream.on('data', (data: Buffer) => state.silent || downstream.write(data));
      const end = (): void => {
        upstream.destroy();
        downstream.destroy();
      };
      for (const socket of [upstream, downstream]) socket.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    closers.push(() => {
      relay.close();
    });
    const kube = client(`https://127.0.0.1:${(relay.address() as AddressInfo).port}`, {
      callTimeoutMs: 300,
      pingTimeoutMs: 300,
    });
    await expect(kube.request('GET', '/a')).resolves.toEqual({ ok: true });
    for (const connection of relayed) connection.silent = true;
    await expect(kube.request('GET', '/b')).rejects.toThrow(/GET \/b on https:.*: no answer in 0\.3 s/);
    // its PING goes unanswered too: the connection is dropped, and a call opens a new one
    await vi.waitFor(() => expect(kube.request('GET', '/c')).resolves.toEqual({ ok: true }), {
      timeout: 5000,
      interval: 50,
    });
    expect(relayed).toHaveLength(2);
    expect(sessions).toBe(2);
  });
});
