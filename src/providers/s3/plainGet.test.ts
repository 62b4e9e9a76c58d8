import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHead, PlainGet, type PlainRequest } from './plainGet.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function readAll(body: Readable, delayMs = 0): Promise<{ bytes: Buffer; chunks: number }> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  }
  return { bytes: Buffer.concat(chunks), chunks: chunks.length };
}

interface Server {
  url: URL;
  /** Remote ports of the sockets requests arrived on, in order. */
  ports: number[];
  close: () => Promise<void>;
}

const servers: Server[] = [];
const pools: PlainGet[] = [];

afterEach(async () => {
  for (const pool of pools.splice(0)) pool.close();
  for (const server of servers.splice(0)) await server.close();
});

async function httpServer(handler: http.RequestListener): Promise<Server> {
  const ports: number[] = [];
  const server = http.createServer((req, res) => {
    ports.push(req.socket.remotePort ?? 0);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const s: Server = {
    url: new URL(`http://127.0.0.1:${port}`),
    ports,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
  servers.push(s);
  return s;
}

/** A raw TCP server: `onData` sees each request's bytes and answers on the socket itself. */
async function rawServer(onData: (socket: net.Socket, data: string) => void): Promise<Server> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (d) => {
      onData(socket, d.toString('latin1'));
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const s: Server = {
    url: new URL(`http://127.0.0.1:${port}`),
    ports: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
  servers.push(s);
  return s;
}

function pool(options: Partial<ConstructorParameters<typeof PlainGet>[0]> = {}): PlainGet {
  const p = new PlainGet({ maxSockets: 4, ...options });
  pools.push(p);
  return p;
}

const request = (server: Server, path = '/bucket/key'): PlainRequest => ({
  url: server.url,
  path,
  headers: { host: server.url.host, 'x-amz-date': '20260101T000000Z' },
});

describe('plain-HTTP GETs read into their body pieces', () => {
  it('parses a response head', () => {
    expect(parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "a"\r\nX-A: 1\r\nx-a: 2')).toEqual({
      status: 200,
      headers: { 'content-length': '5', etag: '"a"', 'x-a': '1, 2' },
    });
    expect(parseHead('HTTP/1.0 404')).toEqual({ status: 404, headers: {} });
    expect(() => parseHead('SSH-2.0-OpenSSH')).toThrow(/not an HTTP/);
    expect(() => parseHead('HTTP/1.1 200 OK\r\nbroken')).toThrow(/malformed/);
  });

  it('returns the exact bytes of bodies of every size, over one kept-alive socket', async () => {
    const bodies = [0, 1, 10, 65_536, 1024 * 1024, 3.5 * 1024 * 1024 + 3].map((n) => randomBytes(n));
    const seen: string[] = [];
    const server = await httpServer((req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''} ${String(req.headers['x-amz-date'])}`);
      const body = bodies[Number(req.url?.split('/').at(-1))] as Buffer;
      res.writeHead(200, { 'content-length': String(body.length), etag: '"e"' });
      res.end(body);
    });
    const get = pool({ pieceSize: 1024 * 1024 });
    for (const [i, body] of bodies.entries()) {
      const answer = await get.get(request(server, `/b/${i}`));
      expect(answer.status).toBe(200);
      expect(answer.headers.etag).toBe('"e"');
      const read = await readAll(answer.body as Readable);
      expect(read.bytes.length).toBe(body.length);
      expect(sha(read.bytes)).toBe(sha(body));
      // whole pieces of at most 1 MiB (the last one shorter)
      expect(read.chunks).toBe(Math.ceil(body.length / (1024 * 1024)));
    }
    expect(seen).toEqual(bodies.map((_, i) => `GET /b/${i} 20260101T000000Z`));
    expect(new Set(server.ports).size).toBe(1);
  });

  it('keeps the bytes right for a slow reader (the socket stops and reads on)', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    });
    const answer = await pool({ pieceSize: 256 * 1024 }).get(request(server));
    const read = await readAll(answer.body as Readable, 5);
    expect(sha(read.bytes)).toBe(sha(body));
  });

  it('gives back other answers unread, with their status and headers', async () => {
    const server = await httpServer((req, res) => {
      if (req.url === '/missing') {
        res.writeHead(404, { 'content-type': 'application/xml', 'content-length': '22' });
        res.end('<Error>NoSuchKey</Error>'.slice(0, 22));
        return;
      }
      // no Content-Length: chunked
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('abc');
      res.end('def');
    });
    const get = pool();
    const missing = await get.get(request(server, '/missing'));
    expect(missing).toMatchObject({ status: 404, body: undefined });
    expect(missing.headers['content-type']).toBe('application/xml');
    const chunked = await get.get(request(server, '/chunked'));
    expect(chunked).toMatchObject({ status: 200, body: undefined });
    expect(chunked.headers['transfer-encoding']).toBe('chunked');
  });

  it('sends again on a fresh socket when the server closed the kept-alive one', async () => {
    let requests = 0;
    const server = await rawServer((socket) => {
      requests++;
      // the first answer keeps the socket; the second request finds it closed without an answer
      if (requests === 2) {
        socket.destroy();
        return;
      }
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const get = pool();
    expect((await readAll((await get.get(request(server))).body as Readable)).bytes.toString()).toBe('ok');
    const again = await get.get(request(server));
    expect((await readAll(again.body as Readable)).bytes.toString()).toBe('ok');
    expect(requests).toBe(3);
  });

  it('fails the body when the connection breaks in the middle of it', async () => {
    const server = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n');
      socket.write(Buffer.alloc(5000));
      setTimeout(() => socket.destroy(), 20);
    });
    const answer = await pool().get(request(server));
    await expect(readAll(answer.body as Readable)).rejects.toThrow(/closed|reset|ended/i);
  });

  it('does not take a fresh socket for an error answered on its first request as a stale one', async () => {
    const server = await rawServer((socket) => socket.destroy());
    await expect(pool().get(request(server))).rejects.toThrow();
  });

  it('closes a socket whose body was dropped, and answers the next request on another', async () => {
    const body = randomBytes(2 * 1024 * 1024);
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    });
    const get = pool({ maxSockets: 1, pieceSize: 64 * 1024 });
    const first = await get.get(request(server));
    const stream = first.body as Readable;
    await new Promise<void>((resolve) =>
      stream.once('data', () => {
        resolve();
      }),
    );
    stream.destroy();
    const second = await get.get(request(server));
    expect(sha((await readAll(second.body as Readable)).bytes)).toBe(sha(body));
    expect(new Set(server.ports).size).toBe(2);
  });

  it('does not reuse a socket the server answers with Connection: close', async () => {
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-length': '3', connection: 'close' });
      res.end('abc');
    });
    const get = pool();
    for (let i = 0; i < 2; i++) {
      expect((await readAll((await get.get(request(server))).body as Readable)).bytes.toString()).toBe('abc');
    }
    expect(new Set(server.ports).size).toBe(2);
  });

  it('runs more requests than sockets, each waiting for a free one', async () => {
    const server = await httpServer((req, res) => {
      const body = Buffer.from(`body of ${req.url}`);
      setTimeout(() => {
        res.writeHead(200, { 'content-length': String(body.length) });
        res.end(body);
      }, 5);
    });
    const get = pool({ maxSockets: 2 });
    const texts = await Promise.all(
      Array.from({ length: 9 }, async (_, i) => {
        const answer = await get.get(request(server, `/k${i}`));
        return (await readAll(answer.body as Readable)).bytes.toString();
      }),
    );
    expect(texts).toEqual(Array.from({ length: 9 }, (_, i) => `body of /k${i}`));
    expect(new Set(server.ports).size).toBeLessThanOrEqual(2);
  });

  it('fails a request that gets no answer within the idle time', async () => {
    const server = await rawServer(() => undefined);
    await expect(pool({ idleMs: 100 }).get(request(server))).rejects.toMatchObject({
      name: 'TimeoutError',
      code: 'ETIMEDOUT',
    });
  });

  it('rejects with the socket error when nothing listens', async () => {
    const server = await rawServer(() => undefined);
    const url = server.url;
    await server.close();
    servers.splice(0);
    await expect(pool().get({ url, path: '/', headers: { host: url.host } })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });
});
