// GETs over plain-HTTP keep-alive sockets that read a response body straight into the buffers
// handed to the caller. Node's HTTP client copies every socket read into a new Buffer (its
// parser's body callback) after reading it into another one: a streamed copy of 2 GB from an
// http:// endpoint spent about a fifth of its client CPU on those allocations and on the ~100
// full garbage collections they set off (docs/performance.md, P1b). Here the socket reads into a
// buffer of its own (`onread`) for the status line and headers, and into the body's pieces
// (up to 1 MiB each, sized to the Content-Length) for the body: one allocation per piece, no copy
// of the body but the bytes that arrived with the headers.
//
// Only what an S3 GET answer needs: one request at a time per socket (no pipelining), a 200 with
// a Content-Length body. Any other answer (another status, a chunked or unframed body) is given
// back with its status and headers only and its socket closed: the caller sends the request
// again another way (the SDK), which reads and reports it as before. TLS endpoints do not use
// this (Node's `onread` is for plain sockets; decryption copies the bytes anyway).
import net from 'node:net';
import { Readable } from 'node:stream';
import type http from 'node:http';

const headScratchSize = 64 * 1024;
/** The largest header block accepted (S3's are a few KiB). */
const maxHeadSize = 256 * 1024;
const defaultPieceSize = 1024 * 1024;
const headEnd = Buffer.from('\r\n\r\n');

export interface PlainGetOptions {
  /** Sockets open at once (in use and idle); more requests wait for one. */
  maxSockets: number;
  /** A socket idle this long while a request is on it (connecting, waiting, reading) fails it. */
  idleMs?: number | undefined;
  /** The largest body piece (default 1 MiB). */
  pieceSize?: number | undefined;
}

export interface PlainRequest {
  url: URL;
  /** The encoded path with its query string. */
  path: string;
  /** Lower-case names; `host` among them. */
  headers: Record<string, string>;
}

export interface PlainResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body when the status is 200 with a Content-Length; else undefined (the socket is closed). */
  body: Readable | undefined;
}

/** The server closed a kept-alive socket just as a request was sent on it. */
export class PlainStaleSocketError extends Error {
  readonly code: string | undefined;

  constructor(message: string, code: string | undefined) {
    super(message);
    this.name = 'StaleSocketError';
    this.code = code;
  }
}

/** The status line and headers of a response head (without the final CRLF CRLF). */
export function parseHead(head: string): { status: number; headers: http.IncomingHttpHeaders } {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (m === null)
    throw new Error(`not an HTTP/1.x response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed response header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(m[1]), headers };
}

interface Exchange {
  resolve: (response: PlainResponse) => void;
  reject: (err: Error) => void;
  /** Bytes of the head read so far (usually one read holds all of it). */
  head: Buffer[];
  headSize: number;
  /** Set once the head is parsed and the status is 200. */
  body?: BodyState;
}

interface BodyState {
  stream: Readable;
  /** Body bytes not yet read from the socket. */
  left: number;
  piece: Buffer | undefined;
  filled: number;
  keepAlive: boolean;
}

/** One keep-alive socket and the request on it, if any. */
class Connection {
  readonly socket: net.Socket;
  readonly key: string;
  /** A request was answered on it before: a reset before any answer means the server closed it. */
  used = false;
  #scratch: Buffer = Buffer.allocUnsafe(headScratchSize);
  #exchange: Exchange | undefined;
  readonly #pool: PlainGet;
  readonly #pieceSize: number;

  constructor(pool: PlainGet, url: URL, key: string, pieceSize: number) {
    this.#pool = pool;
    this.key = key;
    this.#pieceSize = pieceSize;
    this.socket = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port === '' ? 80 : url.port),
      onread: { buffer: () => this.#nextBuffer(), callback: (n, buf) => this.#onRead(n, buf as Buffer) },
    });
    this.socket.setNoDelay(true);
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#fail(err.code, err);
    });
    this.socket.on('end', () => {
      this.#fail('ECONNRESET', new Error('the server closed the connection before the response ended'));
    });
    this.socket.on('close', () => {
      this.#fail('ECONNRESET', new Error('the connection closed before the response ended'));
      this.#pool.forget(this);
    });
    this.socket.on('timeout', () => {
      if (this.#exchange === undefined) return;
      // a hung connection: retryable, as the SDK's socket timeouts are
      const err = Object.assign(new Error(`no data within ${this.socket.timeout} ms`), {
        name: 'TimeoutError',
      });
      this.#fail('ETIMEDOUT', err);
    });
  }

  get busy(): boolean {
    return this.#exchange !== undefined;
  }

  send(request: PlainRequest, idleMs: number | undefined): Promise<PlainResponse> {
    return new Promise<PlainResponse>((resolve, reject) => {
      this.#exchange = { resolve, reject, head: [], headSize: 0 };
      this.socket.ref();
      if (idleMs !== undefined) this.socket.setTimeout(idleMs);
      let text = `GET ${request.path} HTTP/1.1\r\n`;
      for (const [name, value] of Object.entries(request.headers)) text += `${name}: ${value}\r\n`;
      this.socket.write(`${text}\r\n`, 'latin1');
      // a paused socket (a body read earlier stopped it at its end) reads again
      this.socket.resume();
    });
  }

  /** Where the next socket read goes: the body's current piece, else the head scratch buffer. */
  #nextBuffer(): Buffer {
    const body = this.#exchange?.body;
    if (body === undefined || body.left === 0) return this.#scratch;
    if (body.piece === undefined) {
      body.piece = Buffer.allocUnsafeSlow(Math.min(this.#pieceSize, body.left));
      body.filled = 0;
    }
    return body.piece.subarray(body.filled);
  }

  #onRead(n: number, buf: Buffer): boolean {
    const exchange = this.#exchange;
    if (exchange === undefined) {
      // bytes nobody asked for: the connection is out of step, never reuse it
      this.socket.destroy();
      return false;
    }
    const body = exchange.body;
    if (body === undefined) return this.#onHead(exchange, buf.subarray(0, n));
    body.filled += n;
    body.left -= n;
    return this.#flushPiece(body);
  }

  /** Pushes the current piece when it is full; ends the body at its last byte. */
  #flushPiece(body: BodyState): boolean {
    const piece = body.piece;
    let more = true;
    if (piece !== undefined && body.filled === piece.length) {
      body.piece = undefined;
      more = body.stream.push(piece);
    }
    // at the body's end the socket reads on: an idle socket notices the server closing it
    if (body.left === 0 && body.piece === undefined) {
      this.#finish(body);
      return true;
    }
    return more;
  }

  #onHead(exchange: Exchange, bytes: Buffer): boolean {
    // the head's bytes leave the scratch buffer (the next read reuses it)
    exchange.head.push(Buffer.from(bytes));
    exchange.headSize += bytes.length;
    const all = exchange.head.length === 1 ? (exchange.head[0] as Buffer) : Buffer.concat(exchange.head);
    const end = all.indexOf(headEnd);
    if (end < 0) {
      if (exchange.headSize > maxHeadSize) this.#fail(undefined, new Error('the response head is too large'));
      return true;
    }
    let parsed: ReturnType<typeof parseHead>;
    try {
      parsed = parseHead(all.subarray(0, end).toString('latin1'));
    } catch (err) {
      this.#fail(undefined, err as Error);
      return false;
    }
    this.used = true;
    const { status, headers } = parsed;
    const length = headers['content-length'];
    const framed = length !== undefined && /^\d+$/.test(length) && headers['transfer-encoding'] === undefined;
    if (status !== 200 || !framed) {
      // not read here: the caller sends the request again another way
      this.#exchange = undefined;
      this.socket.destroy();
      exchange.resolve({ status, headers, body: undefined });
      return false;
    }
    const size = Number(length);
    const body = this.#startBody(exchange, size, !/\bclose\b/i.test(headers.connection ?? ''));
    // body bytes that came with the head
    const early = all.subarray(end + headEnd.length);
    this.#takeEarly(body, early.subarray(0, size));
    exchange.resolve({ status, headers, body: body.stream });
    if (early.length > size) {
      // more bytes than the response: out of step
      this.#fail(undefined, new Error('the server sent more bytes than the response announced'));
      return false;
    }
    // the last piece was full, so pushed: an ended body ends here
    if (body.left === 0) this.#finish(body);
    return true;
  }

  #startBody(exchange: Exchange, size: number, keepAlive: boolean): BodyState {
    const stream = new Readable({
      // a socket stopped for a slow reader reads again
      read: () => {
        if (this.#exchange?.body === body && !this.socket.destroyed) this.socket.resume();
      },
      destroy: (err, callback) => {
        // a body dropped before its end leaves the socket mid-response: closed, never reused
        if (this.#exchange?.body === body) {
          this.#exchange = undefined;
          this.socket.destroy();
        }
        callback(err);
      },
    });
    const body: BodyState = { stream, left: size, piece: undefined, filled: 0, keepAlive };
    exchange.body = body;
    return body;
  }

  /** Copies the body bytes that arrived with the head into the body's pieces. */
  #takeEarly(body: BodyState, early: Buffer): void {
    let from = 0;
    while (from < early.length) {
      const piece: Buffer = body.piece ?? Buffer.allocUnsafeSlow(Math.min(this.#pieceSize, body.left));
      body.piece = piece;
      const n = early.copy(piece, body.filled, from);
      from += n;
      body.filled += n;
      body.left -= n;
      if (body.filled === piece.length) {
        body.piece = undefined;
        body.filled = 0;
        body.stream.push(piece);
      }
    }
  }

  #finish(body: BodyState): void {
    this.#exchange = undefined;
    body.stream.push(null);
    if (body.keepAlive) this.#pool.release(this);
    else this.socket.destroy();
  }

  /** The request on this socket fails (or none: the idle socket goes). */
  #fail(code: string | undefined, err: Error): void {
    const exchange = this.#exchange;
    this.#exchange = undefined;
    if (!this.socket.destroyed) this.socket.destroy();
    if (exchange === undefined) return;
    const failure = Object.assign(err, code === undefined ? {} : { code });
    if (exchange.body !== undefined) {
      exchange.body.stream.destroy(failure);
      return;
    }
    const stale = this.used && exchange.headSize === 0 && (code === 'ECONNRESET' || code === 'EPIPE');
    exchange.reject(stale ? new PlainStaleSocketError(err.message, code) : failure);
  }
}

/** A pool of keep-alive plain-HTTP sockets for GETs, per host and port. */
export class PlainGet {
  readonly #options: PlainGetOptions;
  readonly #idle = new Map<string, Connection[]>();
  #open = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(options: PlainGetOptions) {
    this.#options = options;
  }

  /**
   * Sends a GET; resolves with the response once its head has arrived. Network failures reject
   * with the socket's error (its `code`); a kept-alive socket the server had closed is retried
   * once on a fresh one.
   */
  async get(request: PlainRequest): Promise<PlainResponse> {
    try {
      return await this.#send(request, false);
    } catch (err) {
      if (!(err instanceof PlainStaleSocketError)) throw err;
      return this.#send(request, true);
    }
  }

  async #send(request: PlainRequest, fresh: boolean): Promise<PlainResponse> {
    const connection = await this.#acquire(request.url, fresh);
    return connection.send(request, this.#options.idleMs);
  }

  async #acquire(url: URL, fresh: boolean): Promise<Connection> {
    const key = url.host;
    for (;;) {
      const idle = this.#idle.get(key);
      if (!fresh) {
        while (idle !== undefined && idle.length > 0) {
          const connection = idle.pop() as Connection;
          if (!connection.socket.destroyed) return connection;
        }
      }
      if (this.#open < this.#options.maxSockets) {
        this.#open++;
        return new Connection(this, url, key, this.#options.pieceSize ?? defaultPieceSize);
      }
      // an idle socket of another host makes room
      const other = [...this.#idle.values()].find((list) => list.length > 0)?.pop();
      if (other !== undefined) {
        other.socket.destroy();
        continue;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  /** A socket whose response ended: idle until the next request. */
  release(connection: Connection): void {
    connection.socket.setTimeout(0);
    // an idle socket does not keep the process alive
    connection.socket.unref();
    let idle = this.#idle.get(connection.key);
    if (idle === undefined) {
      idle = [];
      this.#idle.set(connection.key, idle);
    }
    idle.push(connection);
    this.#waiting.shift()?.();
  }

  /** A socket closed (by either side): it no longer counts. */
  forget(connection: Connection): void {
    this.#open--;
    const idle = this.#idle.get(connection.key);
    const at = idle?.indexOf(connection) ?? -1;
    if (at >= 0) idle?.splice(at, 1);
    this.#waiting.shift()?.();
  }

  /** Closes every idle socket. */
  close(): void {
    for (const list of this.#idle.values())
      for (const connection of list.splice(0)) connection.socket.destroy();
  }
}
