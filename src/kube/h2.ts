// One HTTP/2 connection to the API server for every call of a client, as client-go talks to it.
// Compared with a pool of HTTP/1.1 keep-alive connections: node:http2 sends the frames of all the
// streams that are ready in one write per tick (strace on loopback TLS: 1,037 writes for 6,500
// calls against 6,596), and a call costs the client 1.5–1.9× less CPU (bench/kube-client-cost.ts,
// docs/performance.md). Each write on loopback wakes the API server: fewer writes, fewer switches
// on a machine the controller shares with it.
//
// The connection is opened with ALPN offering h2 and http/1.1; a server (or a proxy in front of
// it) that does not choose h2 gets `undefined` back, and the client stays on HTTP/1.1 for good.
// The session is dropped when the server sends GOAWAY (kube-apiserver does so to spread clients
// over replicas) or the connection ends; the next call opens a new one. A call that times out
// sends a PING: no answer in 15 s and the session is destroyed (a dead connection).
import http2 from 'node:http2';
import tls from 'node:tls';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A call as either protocol sends it. */
export interface Outgoing {
  method: string;
  /** Path and query. */
  path: string;
  headers: Record<string, string | number>;
  body: Buffer | undefined;
  signal: AbortSignal | undefined;
}

export interface Call extends Outgoing {
  timeoutMs: number;
}

/** Why a call failed without the server having processed it: safe to send again, whatever the method. */
export class Unprocessed extends Error {
  override name = 'Unprocessed';
}

/** The connection or stream ended under a call: an idempotent one may be sent again. */
export class ConnectionLost extends Error {
  override name = 'ConnectionLost';
}

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;
/** Per stream and for the connection: large lists arrive without waiting for window updates. */
const streamWindow = 4 << 20;
const connectionWindow = 64 << 20;
/** How long a PING sent after a timed-out call may go unanswered (default). */
export const defaultPingTimeoutMs = 15_000;
const connectTimeoutMs = 30_000;

export class H2Connection {
  readonly #authority: string;
  readonly #tls: tls.ConnectionOptions;
  #session: http2.ClientHttp2Session | undefined;
  #opening: Promise<http2.ClientHttp2Session | undefined> | undefined;
  readonly #pingTimeoutMs: number;
  #streams = 0;
  /** Counts close() calls: a connection opened across one is not kept. */
  #generation = 0;

  /** `authority`: https://host:port; `options`: host, port and TLS settings for tls.connect. */
  constructor(authority: string, options: tls.ConnectionOptions, pingTimeoutMs = defaultPingTimeoutMs) {
    this.#authority = authority;
    this.#tls = options;
    this.#pingTimeoutMs = pingTimeoutMs;
  }

  /** The open session, a new one, or undefined when the server does not speak HTTP/2. */
  session(): Promise<http2.ClientHttp2Session | undefined> {
    const current = this.#session;
    if (current !== undefined && !current.closed && !current.destroyed) return Promise.resolve(current);
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(): Promise<http2.ClientHttp2Session | undefined> {
    const generation = this.#generation;
    const socket = tls.connect({ ...this.#tls, ALPNProtocols: ['h2', 'http/1.1'] });
    let failed: (err: Error) => void = () => undefined;
    const onTimeout = (): void => {
      failed(new Error(`no TLS handshake in ${connectTimeoutMs / 1000} s`));
    };
    const onError = (err: Error): void => {
      failed(err);
    };
    socket.setTimeout(connectTimeoutMs, onTimeout);
    socket.once('error', onError);
    try {
      await new Promise<void>((resolve, reject) => {
        failed = reject;
        socket.once('secureConnect', resolve);
      });
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      // only the handshake's own listeners: the session takes the socket's errors from here
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
      socket.off('error', onError);
    }
    if (socket.alpnProtocol !== 'h2' || generation !== this.#generation) {
      socket.destroy();
      if (generation !== this.#generation) throw new Unprocessed('the client was closed while connecting');
      return undefined;
    }
    const session = http2.connect(this.#authority, {
      createConnection: () => socket,
      settings: { enablePush: false, initialWindowSize: streamWindow },
    });
    const drop = (): void => {
      if (this.#session === session) this.#session = undefined;
    };
    session.on('goaway', drop);
    session.on('close', drop);
    // a session error also ends its streams, which reject their calls
    session.on('error', drop);
    session.once('connect', () => {
      session.setLocalWindowSize(connectionWindow);
    });
    if (this.#streams === 0) session.unref();
    this.#session = session;
    return session;
  }

  /** One call on the session: its status, headers and whole body. */
  exchange(session: http2.ClientHttp2Session, call: Call): Promise<Answer> {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(
        { ':method': call.method, ':path': call.path, ...call.headers },
        { endStream: call.body === undefined, ...(call.signal === undefined ? {} : { signal: call.signal }) },
      );
    } catch (err) {
      // the session was closed or went away between being handed out and this call
      return Promise.reject(new Unprocessed((err as Error).message, { cause: err }));
    }
    // while calls are in flight the connection keeps the process alive; idle, it does not
    if (this.#streams++ === 0) session.ref();
    return new Promise<Answer>((resolve, reject) => {
      let status = 0;
      let headers: Answer['headers'] = {};
      let settled = false;
      const settle = (err: Error | undefined, body?: Buffer): void => {
        if (settled) return;
        settled = true;
        if (err === undefined) resolve({ status, headers, body: body ?? Buffer.alloc(0) });
        else reject(err);
      };
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        status = h[':status'] ?? 0;
        headers = h;
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        settle(undefined, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      });
      stream.on('error', (err: Error) => {
        // refused (a GOAWAY's streams past its last): the server did not process it
        settle(
          stream.rstCode === NGHTTP2_REFUSED_STREAM ? new Unprocessed(err.message, { cause: err }) : err,
        );
      });
      stream.on('close', () => {
        if (--this.#streams === 0 && !session.destroyed) session.unref();
        // (an error only when unanswered: building one per call showed in the client's profile)
        if (!settled) {
          const when = status === 0 ? 'before the answer' : 'in the middle of the answer';
          settle(new ConnectionLost(`the HTTP/2 stream was closed ${when}`));
        }
      });
      stream.setTimeout(call.timeoutMs, () => {
        settle(new Error(`no answer in ${call.timeoutMs / 1000} s`));
        stream.close(NGHTTP2_CANCEL);
        this.#checkAlive(session);
      });
      if (call.body !== undefined) stream.end(call.body);
    });
  }

  /** A call timed out: is the connection still there? No PING answer in 15 s and it is destroyed. */
  #checkAlive(session: http2.ClientHttp2Session): void {
    const dead = setTimeout(() => {
      session.destroy(new Error(`no answer to an HTTP/2 PING in ${this.#pingTimeoutMs / 1000} s`));
    }, this.#pingTimeoutMs);
    dead.unref();
    const sent = session.ping((err) => {
      if (err === null) clearTimeout(dead);
    });
    if (!sent) clearTimeout(dead);
  }

  /** Closes the session (calls in flight end with an error); a later call opens a new one. */
  close(): void {
    this.#generation++;
    this.#session?.destroy();
    this.#session = undefined;
  }
}
