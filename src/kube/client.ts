// A small Kubernetes REST client: JSON requests over kept-alive HTTPS connections (a bounded
// pool, as client-go keeps), watches as streams of JSON lines, errors that carry the HTTP code
// and the API server's message. It replaces @kubernetes/client-node in the controller and the
// worker: that library costs ~90 MB of RSS to load (2,700 generated model files) and, in 2.0.1,
// opens a new TLS connection for every call when the kubeconfig has TLS settings (ADR 0004).
import http from 'node:http';
import https from 'node:https';
import type tls from 'node:tls';
import { loadClusterAccess, type ClusterAccess, type Credentials, type LoadOptions } from './config.ts';
import {
  ConnectionLost,
  defaultPingTimeoutMs,
  H2Connection,
  Unprocessed,
  type Answer,
  type Outgoing,
} from './h2.ts';
import { CallScheduler, type Priority } from './scheduler.ts';

/** A failed API call: `code` is the HTTP status (404, 409, …), `reason` the Status reason. */
export class KubeError extends Error {
  override name = 'KubeError';
  readonly code: number;
  readonly reason: string | undefined;

  constructor(message: string, code: number, reason?: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Default application/json; `merge` = application/merge-patch+json. */
  contentType?: string;
  signal?: AbortSignal;
  /** Which waiting calls go first when the calls in flight are at the limit (default normal). */
  priority?: Priority;
}

/**
 * API calls in flight at most, by default. Measured under the controller bench's burst of 1,000
 * creates (docs/performance.md, controller round 6): 16 left the API server's answers to the
 * controller too few while the creates went on (reaction p99 1.7–2.4 s); 32 gave 1.1–1.5 s in five
 * runs; 48 1.1–2.3 s and 64–96 up to 3.8 s, the API server's watch delivery slowing with them.
 */
export const defaultMaxInFlight = 32;

export interface ClientOptions {
  /**
   * API calls in flight at most (watches not counted), and the connections kept for them; more
   * wait in order of priority (scheduler.ts). Default `defaultMaxInFlight`.
   */
  maxInFlight?: number;
  /**
   * Calls over one HTTP/2 connection when the server offers h2 in TLS (default true); false, or a
   * plain http:// server, keeps them on HTTP/1.1 keep-alive connections. Watches always use
   * HTTP/1.1 connections of their own.
   */
  http2?: boolean;
  /** A call with no answer in this time fails (default 60 s; watches have none). */
  callTimeoutMs?: number;
  /**
   * Over HTTP/2, a timed-out call sends a PING: unanswered in this time (default 15 s), the
   * connection is dropped and the next call opens a new one.
   */
  pingTimeoutMs?: number;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export const mergePatch = 'application/merge-patch+json';

/** Idempotent calls are retried once when a kept-alive connection was closed under them. */
const idempotent = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);
/** Calls the server refused unprocessed (an HTTP/2 GOAWAY's) are sent again, this many times at most. */
const unprocessedRetries = 3;

function connectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    err instanceof ConnectionLost ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    // an HTTP/2 connection that ended (a GOAWAY with an error, a session destroyed) under the call
    code === 'ERR_HTTP2_STREAM_CANCEL' ||
    code === 'ERR_HTTP2_SESSION_ERROR'
  );
}
const defaultCallTimeoutMs = 60_000;

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

function statusOf(body: Buffer): { message?: string; reason?: string } {
  try {
    return JSON.parse(body.toString('utf8')) as { message?: string; reason?: string };
  } catch {
    return { message: body.toString('utf8').slice(0, 500) };
  }
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });

export class KubeClient {
  readonly access: ClusterAccess;
  readonly #secure: boolean;
  readonly #maxSockets: number;
  readonly #callTimeoutMs: number;
  readonly #pingTimeoutMs: number;
  readonly #calls: CallScheduler;
  #agent: http.Agent | undefined;
  #watchAgent: http.Agent | undefined;
  #agentCert: Buffer | undefined;
  #h2: H2Connection | undefined;
  #h2Cert: Buffer | undefined;
  /** HTTP/1.1 once known (an http:// server, http2: false, or no h2 in ALPN); h2 until then. */
  #http1: boolean;
  /** The API server's protocol, host and port, parsed once. */
  readonly #target: { protocol: string; hostname: string; port: number };
  /** A path prefix of the server URL (a proxy's), without the trailing slash; usually empty. */
  readonly #basePath: string;

  constructor(access: ClusterAccess, options: ClientOptions = {}) {
    this.access = access;
    const url = new URL(access.server);
    this.#secure = url.protocol === 'https:';
    this.#target = {
      protocol: url.protocol,
      // an IPv6 address without its brackets, as http.request wants it
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? (this.#secure ? 443 : 80) : Number(url.port),
    };
    this.#basePath = url.pathname.replace(/\/$/, '');
    this.#maxSockets = options.maxInFlight ?? defaultMaxInFlight;
    this.#calls = new CallScheduler(this.#maxSockets);
    this.#http1 = !this.#secure || options.http2 === false;
    this.#callTimeoutMs = options.callTimeoutMs ?? defaultCallTimeoutMs;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? defaultPingTimeoutMs;
  }

  /** The cluster from a kubeconfig, $KUBECONFIG, ~/.kube/config or the Pod's service account. */
  static load(options: LoadOptions & ClientOptions = {}): KubeClient {
    return new KubeClient(loadClusterAccess(options), options);
  }

  get server(): string {
    return this.access.server;
  }

  /** The TLS settings of every connection: the cluster's CA and server name, the client certificate. */
  private tls(creds: Credentials): tls.ConnectionOptions {
    return {
      ...(this.access.ca === undefined ? {} : { ca: this.access.ca }),
      ...(creds.cert === undefined ? {} : { cert: creds.cert }),
      ...(creds.key === undefined ? {} : { key: creds.key }),
      rejectUnauthorized: !this.access.insecureSkipTLSVerify,
      ...(this.access.tlsServerName === undefined ? {} : { servername: this.access.tlsServerName }),
    };
  }

  /** The connection pools (rebuilt when an exec plugin hands out a new client certificate). */
  private agents(creds: Credentials): { pooled: http.Agent; watch: http.Agent } {
    if (this.#agent === undefined || this.#watchAgent === undefined || creds.cert !== this.#agentCert) {
      this.#agent?.destroy();
      this.#watchAgent?.destroy();
      const tls = this.tls(creds);
      const make = (options: http.AgentOptions): http.Agent =>
        this.#secure ? new https.Agent({ ...tls, ...options }) : new http.Agent(options);
      this.#agent = make({ keepAlive: true, maxSockets: this.#maxSockets, maxFreeSockets: this.#maxSockets });
      // watches hold their connection for minutes: a pool of their own, so they never queue calls
      this.#watchAgent = make({ keepAlive: false });
      this.#agentCert = creds.cert;
    }
    return { pooled: this.#agent, watch: this.#watchAgent };
  }

  /** The HTTP/2 connection (a new one when an exec plugin hands out a new client certificate). */
  private h2(creds: Credentials): H2Connection {
    if (this.#h2 === undefined || creds.cert !== this.#h2Cert) {
      this.#h2?.close();
      const { hostname: host, port } = this.#target;
      this.#h2 = new H2Connection(
        `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
        { ...this.tls(creds), host, port },
        this.#pingTimeoutMs,
      );
      this.#h2Cert = creds.cert;
    }
    return this.#h2;
  }

  private headers(
    creds: Credentials,
    contentType: string | undefined,
    length: number,
  ): Record<string, string | number> {
    const headers: Record<string, string | number> = {
      accept: 'application/json',
      'user-agent': 'lc2-backup',
    };
    if (creds.token !== undefined) headers.authorization = `Bearer ${creds.token}`;
    else if (creds.basic !== undefined) {
      const { username, password } = creds.basic;
      headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
    if (contentType !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = length;
    }
    return headers;
  }

  /** A call as it goes out on either protocol: full path, headers and encoded body. */
  private outgoing(method: string, path: string, options: RequestOptions, creds: Credentials): Outgoing {
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const contentType = body === undefined ? undefined : (options.contentType ?? 'application/json');
    return {
      method,
      path: `${this.#basePath}${path}${queryString(options.query)}`,
      headers: this.headers(creds, contentType, body?.length ?? 0),
      body,
      signal: options.signal,
    };
  }

  /** Sends a call over HTTP/1.1: on a kept-alive connection of the pool, or a watch's own. */
  private open(call: Outgoing, creds: Credentials, watch = false): Promise<http.IncomingMessage> {
    const agents = this.agents(creds);
    const send = this.#secure ? https.request : http.request;
    return new Promise((resolve, reject) => {
      // host and port parsed once (a URL per call showed in the controller's profile)
      const req = send({
        ...this.#target,
        path: call.path,
        method: call.method,
        agent: watch ? agents.watch : agents.pooled,
        headers: call.headers,
        ...(call.signal === undefined ? {} : { signal: call.signal }),
        ...(watch ? {} : { timeout: this.#callTimeoutMs }),
      });
      req.on('response', resolve);
      req.on('error', reject);
      req.on('timeout', () => {
        req.destroy(new Error(`no answer in ${this.#callTimeoutMs / 1000} s`));
      });
      req.end(call.body);
    });
  }

  /** One call over HTTP/1.1, its answer read whole. */
  private async exchange1(call: Outgoing, creds: Credentials): Promise<Answer> {
    const res = await this.open(call, creds);
    // read with events: an async iterator per answer cost more than the reading
    const body = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
      });
      // a connection that closes mid-answer ends in 'error' (aborted): client.test.ts
      res.on('error', reject);
    });
    return { status: res.statusCode ?? 0, headers: res.headers, body };
  }

  /** One call: over the HTTP/2 connection, or HTTP/1.1 when the server does not speak h2. */
  private async exchange(
    method: string,
    path: string,
    options: RequestOptions,
    creds: Credentials,
  ): Promise<Answer> {
    const call = this.outgoing(method, path, options, creds);
    if (!this.#http1) {
      const h2 = this.h2(creds);
      const session = await h2.session();
      if (session !== undefined) return h2.exchange(session, { ...call, timeoutMs: this.#callTimeoutMs });
      // the server (or a proxy before it) chose HTTP/1.1 in ALPN: it stays so
      this.#http1 = true;
    }
    return this.exchange1(call, creds);
  }

  /** One exchange; undefined when the call may be sent again (a connection closed under it). */
  private async attempt(
    method: string,
    path: string,
    options: RequestOptions,
    call: { refresh: boolean; attempt: number },
  ): Promise<Answer | undefined> {
    const creds = await this.access.credentials(call.refresh);
    try {
      return await this.#calls.run(options.priority ?? 'normal', () =>
        this.exchange(method, path, options, creds),
      );
    } catch (err) {
      if (err instanceof Unprocessed && call.attempt < unprocessedRetries) return undefined;
      if (call.attempt === 0 && idempotent.has(method) && connectionLost(err)) return undefined;
      throw new Error(`${method} ${path} on ${this.access.server}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** One API call; retried on 429 (Retry-After), a 401 with fresh credentials, a reset keep-alive socket. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    let refresh = false;
    for (let attempt = 0; ; attempt++) {
      const res = await this.attempt(method, path, options, { refresh, attempt });
      if (res === undefined) continue;
      if (res.status < 300) {
        return (res.body.length === 0 ? undefined : JSON.parse(res.body.toString('utf8'))) as T;
      }
      if (res.status === 429 && attempt < 8) {
        const after = Number(res.headers['retry-after'] ?? 1);
        await sleep(Math.min(10, Number.isFinite(after) && after > 0 ? after : 1) * 1000);
        continue;
      }
      if (res.status === 401 && !refresh) {
        refresh = true;
        continue;
      }
      const status = statusOf(res.body);
      const reason = status.reason === undefined ? '' : ` ${status.reason}`;
      throw new KubeError(
        `${method} ${path}: ${res.status}${reason}: ${status.message ?? '(no message)'}`,
        res.status,
        status.reason,
      );
    }
  }

  /** GET; undefined when the object does not exist. */
  async get<T>(path: string, query?: Query, priority?: Priority): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path, {
        ...(query === undefined ? {} : { query }),
        ...(priority === undefined ? {} : { priority }),
      });
    } catch (err) {
      if (err instanceof KubeError && err.code === 404) return undefined;
      throw err;
    }
  }

  /**
   * Streams a watch: `onEvent` for each event, in order. Resolves when the server ends the
   * stream (its timeout), rejects on a connection error or an HTTP error (410 Gone: re-list).
   */
  async watch<T>(
    path: string,
    query: Query,
    onEvent: (event: WatchEvent<T>) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const creds = await this.access.credentials();
    const call = this.outgoing(
      'GET',
      path,
      { query: { ...query, watch: true }, ...(signal === undefined ? {} : { signal }) },
      creds,
    );
    const res = await this.open(call, creds, true);
    if ((res.statusCode ?? 0) >= 300) {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      const status = statusOf(Buffer.concat(chunks));
      throw new KubeError(
        `watch ${path}: ${res.statusCode ?? 0}: ${status.message ?? ''}`,
        res.statusCode ?? 0,
        status.reason,
      );
    }
    res.setEncoding('utf8');
    let pending = '';
    for await (const chunk of res) {
      pending += chunk as string;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line !== '') onEvent(JSON.parse(line) as WatchEvent<T>);
        newline = pending.indexOf('\n');
      }
    }
  }

  /** Closes every connection, in use or idle: call it once the work has stopped. */
  close(): void {
    this.#h2?.close();
    this.#h2 = undefined;
    this.#agent?.destroy();
    this.#watchAgent?.destroy();
    this.#agent = undefined;
    this.#watchAgent = undefined;
  }
}

/** The HTTP status of a failed call, if it has one (KubeError; undefined for network errors). */
export function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}
