// A lean request path for the requests the engine sends once per object, by the ten thousand
// (single-part CopyObject, HeadObject, GetObject, PutObject and UploadPart of a streamed copy,
// ListObjectsV2 pages): signed here (SigV4, one cached signing key) and sent over a keep-alive
// pool of its own. The AWS SDK spends about 1 ms of CPU per request on its middleware stack,
// schema-based (de)serialisation, endpoint rules and a new signer with a new signing key per
// request; on a server-side copy of small objects that CPU is taken from the server on the same
// machine and decides the wall time (docs/performance.md, P1a). This path costs about a fifth of
// that. A body is sent as the caller's chunks, never copied into one buffer, with the payload
// hash the caller gives (the SHA-256 it computed anyway, or UNSIGNED-PAYLOAD): the SDK hashes
// every Buffer body a second time to sign it (docs/performance.md, P1b). GETs of a plain-HTTP
// endpoint go over sockets of their own that read the body straight into the pieces handed to the
// caller (plainGet.ts): Node's HTTP client allocates and copies every read (P1b).
//
// What the SDK resolves stays the SDK's: credentials (its memoised provider, refreshed before
// expiry), the clock-skew correction, and the URL and signing scope of every bucket (its own
// endpoint rules, once per bucket). Anything this path does not handle goes to the SDK: a bucket
// whose endpoint needs another auth scheme (S3 Express, multi-region access points), and every
// response that the SDK itself would act on (redirects to another region, 400/403: a skewed
// clock, a wrong region, denied access) — the caller resends the request through the SDK, which
// then reports or corrects it exactly as before.
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { PlainGet } from './plainGet.ts';

const emptySha256 = createHash('sha256').digest('hex');
const unsignedPayload = 'UNSIGNED-PAYLOAD';
/** Responses the SDK acts on (region redirects, clock skew, auth): resent through the SDK. */
const sdkStatuses = new Set([301, 307, 400, 403]);
const maxCachedBuckets = 1000;

/** One path segment as S3 encodes it (RFC 3986: only unreserved characters stay). */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export function encodeKey(key: string): string {
  return key.split('/').map(encodeSegment).join('/');
}

/** SigV4's canonical query string: names sorted, names and values encoded as in paths. */
export function canonicalQuery(query: Record<string, string>): string {
  return Object.keys(query)
    .sort()
    .map((name) => `${encodeSegment(name)}=${encodeSegment(query[name] ?? '')}`)
    .join('&');
}

export interface LeanOptions {
  client: S3Client;
  /** The store's custom endpoint, as configured (the endpoint rules take it as a parameter). */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  maxSockets: number;
  connectionTimeoutMs?: number | undefined;
  requestTimeoutMs?: number | undefined;
}

/** What a request carries besides its method and object. */
export interface LeanRequest {
  headers?: Record<string, string> | undefined;
  /** Query parameters (e.g. `partNumber`, `uploadId`), signed. */
  query?: Record<string, string> | undefined;
  /** The body as chunks, written one after another (none: an empty body). */
  body?: readonly Buffer[] | undefined;
  /** `x-amz-content-sha256` of a body: its hex SHA-256, or `UNSIGNED-PAYLOAD` (the default). */
  payloadHash?: string | undefined;
}

export interface LeanResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface BucketEndpoint {
  url: URL;
  region: string;
  service: string;
}

interface OutgoingRequest {
  url: URL;
  method: string;
  /** The encoded path with its canonical query string. */
  path: string;
  headers: Record<string, string>;
  body: readonly Buffer[];
}

interface SigningKey {
  scope: string;
  secret: string;
  key: KeyObject;
}

const xmlEntities: Record<string, string> = { quot: '"', amp: '&', lt: '<', gt: '>', apos: "'" };

const tagPatterns = new Map<string, RegExp>();

function xmlEntity(entity: string): string {
  if (entity.startsWith('#x')) return String.fromCodePoint(parseInt(entity.slice(2), 16));
  if (entity.startsWith('#')) return String.fromCodePoint(Number(entity.slice(1)));
  return xmlEntities[entity] ?? `&${entity};`;
}

/** The text of the first `<tag>` of a small XML document, entities decoded (MinIO: `&#34;`). */
export function xmlValue(xml: string, tag: string): string | undefined {
  let pattern = tagPatterns.get(tag);
  if (pattern === undefined) {
    pattern = new RegExp(`<${tag}>([^<]*)</${tag}>`);
    tagPatterns.set(tag, pattern);
  }
  const m = pattern.exec(xml);
  return m?.[1]?.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (_, e: string) => xmlEntity(e));
}

/** An S3 error response as the SDK would throw it (name = S3's code, HTTP status in $metadata). */
export function s3Error(response: LeanResponse, fallbackCode: string): Error {
  const code = xmlValue(response.body, 'Code') ?? fallbackCode;
  const message = xmlValue(response.body, 'Message') ?? `HTTP ${response.status}`;
  return Object.assign(new Error(message), {
    name: code,
    Code: code,
    $metadata: { httpStatusCode: response.status },
  });
}

export function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `YYYYMMDDTHHMMSSZ`, SigV4's time format. */
export function amzDate(at: Date): string {
  return at.toISOString().replace(/[:-]|\.\d{3}/g, '');
}

/**
 * SigV4's signing key of a scope `day/region/service/aws4_request`, as a KeyObject: an HMAC with
 * a KeyObject costs a sixth of one with a Buffer key (no key import per call).
 */
export function signingKey(secret: string, scope: string): KeyObject {
  let key: Buffer = Buffer.from(`AWS4${secret}`);
  for (const part of scope.split('/')) key = createHmac('sha256', key).update(part).digest();
  return createSecretKey(key);
}

/**
 * The SigV4 Authorization header of a request: every header given (lower-case names, `x-amz-date`
 * and `x-amz-content-sha256` among them) is signed; `query` is the canonical query string.
 */
export function authorization(
  request: { method: string; path: string; query?: string; headers: Record<string, string> },
  signer: { accessKeyId: string; scope: string; key: KeyObject },
): string {
  const { headers } = request;
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonicalHeaders = names.map((n) => `${n}:${(headers[n] ?? '').trim()}\n`).join('');
  const canonical = `${request.method}\n${request.path}\n${request.query ?? ''}\n${canonicalHeaders}\n${signedHeaders}\n${headers['x-amz-content-sha256'] ?? emptySha256}`;
  const toSign = `AWS4-HMAC-SHA256\n${headers['x-amz-date'] ?? ''}\n${signer.scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
  const signature = createHmac('sha256', signer.key).update(toSign).digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${signer.accessKeyId}/${signer.scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

/** The server closed a kept-alive socket just as a request was sent on it. */
class StaleSocketError extends Error {
  /** The socket's error code (ECONNRESET, EPIPE): a retryable network error if it happens twice. */
  readonly code: string | undefined;

  constructor(cause: NodeJS.ErrnoException) {
    super(cause.message, { cause });
    this.name = 'StaleSocketError';
    this.code = cause.code;
  }
}

/** A whole (small) response: status, headers and the body as text. */
function readResponse(response: http.IncomingMessage): Promise<LeanResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('error', reject);
    response.on('end', () => {
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
    });
  });
}

export class LeanS3 {
  readonly #client: S3Client;
  readonly #options: LeanOptions;
  readonly #agent: http.Agent;
  readonly #secure: boolean;
  /** GETs of a plain-HTTP endpoint: bodies read straight into their pieces (plainGet.ts). */
  readonly #plain: PlainGet | undefined;
  readonly #endpoints = new Map<string, Promise<BucketEndpoint | undefined>>();
  #signing: SigningKey | undefined;

  constructor(options: LeanOptions) {
    this.#client = options.client;
    this.#options = options;
    this.#secure = options.endpoint === undefined || options.endpoint.startsWith('https:');
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
    this.#agent = this.#secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#plain = this.#secure
      ? undefined
      : new PlainGet({
          maxSockets: options.maxSockets,
          idleMs: options.requestTimeoutMs ?? options.connectionTimeoutMs,
        });
  }

  /**
   * Sends one request for `bucket`/`key`; undefined when the SDK must send it instead (the
   * bucket's endpoint needs another auth scheme, or the response is one the SDK acts on).
   * Network failures reject with the socket's error (its `code`, e.g. ECONNRESET).
   */
  async send(
    method: 'PUT' | 'HEAD' | 'GET',
    bucket: string,
    key: string,
    request: LeanRequest = {},
  ): Promise<LeanResponse | undefined> {
    const outgoing = await this.#outgoing(method, bucket, key, request);
    if (outgoing === undefined) return undefined;
    const response = await readResponse(await this.#exchange(outgoing));
    return sdkStatuses.has(response.status) ? undefined : response;
  }

  /**
   * Opens a GET of `bucket`/`key`: the response as a stream when its status is 200, else
   * undefined (its body read and dropped), and the SDK sends the request again, reporting or
   * correcting what went wrong as before. Network failures reject with the socket's error.
   */
  async open(bucket: string, key: string): Promise<Readable | undefined> {
    const outgoing = await this.#outgoing('GET', bucket, key, {});
    if (outgoing === undefined) return undefined;
    if (this.#plain !== undefined) {
      // any answer but a 200 with a body was not read (its socket closed): the SDK sends it again
      const answer = await this.#plain.get(outgoing);
      return answer.status === 200 ? answer.body : undefined;
    }
    const response = await this.#exchange(outgoing);
    if (response.statusCode === 200) return response;
    response.resume();
    return undefined;
  }

  async #outgoing(
    method: string,
    bucket: string,
    key: string,
    request: LeanRequest,
  ): Promise<OutgoingRequest | undefined> {
    const endpoint = await this.#endpointOf(bucket);
    if (endpoint === undefined) return undefined;
    const base = endpoint.url.pathname.replace(/\/$/, '');
    const path = `${base}/${encodeKey(key)}`;
    const query = request.query === undefined ? '' : canonicalQuery(request.query);
    const headers = await this.#signed({ method, path, query }, endpoint, request);
    return {
      url: endpoint.url,
      method,
      path: query === '' ? path : `${path}?${query}`,
      headers,
      body: request.body ?? [],
    };
  }

  /** The response (its headers; the body still to read) to a request. */
  async #exchange(outgoing: OutgoingRequest): Promise<http.IncomingMessage> {
    return this.#request(outgoing).catch((err: unknown) => {
      // a kept-alive socket the server closed meanwhile: once more on a fresh one (every request
      // sent here is idempotent: a GET, a HEAD, a copy or a put onto the same key, the same part)
      if (!(err instanceof StaleSocketError)) throw err;
      return this.#request(outgoing);
    });
  }

  /** The bucket's URL and signing scope by the SDK's own endpoint rules; undefined: not SigV4. */
  #endpointOf(bucket: string): Promise<BucketEndpoint | undefined> {
    let endpoint = this.#endpoints.get(bucket);
    if (endpoint === undefined) {
      if (this.#endpoints.size >= maxCachedBuckets) this.#endpoints.clear();
      endpoint = this.#resolve(bucket).catch(() => undefined);
      this.#endpoints.set(bucket, endpoint);
    }
    return endpoint;
  }

  async #resolve(bucket: string): Promise<BucketEndpoint | undefined> {
    const config = this.#client.config;
    const region = await config.region();
    const resolved = config.endpointProvider({
      Bucket: bucket,
      Region: region,
      UseFIPS: await config.useFipsEndpoint(),
      UseDualStack: await config.useDualstackEndpoint(),
      ForcePathStyle: this.#options.forcePathStyle,
      Accelerate: config.useAccelerateEndpoint,
      DisableMultiRegionAccessPoints: config.disableMultiregionAccessPoints,
      ...(this.#options.endpoint === undefined ? {} : { Endpoint: this.#options.endpoint }),
    });
    const schemes = resolved.properties?.authSchemes as
      { name?: string; signingName?: string; signingRegion?: string }[] | undefined;
    const scheme = schemes?.[0] ?? { name: 'sigv4' };
    const url = new URL(resolved.url.href);
    // another scheme (sigv4a, S3 Express sessions) or a protocol other than the pool's: the SDK's
    if (scheme.name !== 'sigv4' || url.search !== '' || (url.protocol === 'https:') !== this.#secure)
      return undefined;
    return { url, region: scheme.signingRegion ?? region, service: scheme.signingName ?? 's3' };
  }

  /** The request's headers with SigV4 (header auth) added. */
  async #signed(
    target: { method: string; path: string; query: string },
    endpoint: BucketEndpoint,
    request: LeanRequest,
  ): Promise<Record<string, string>> {
    const credentials = await this.#client.config.credentials();
    const now = amzDate(new Date(Date.now() + this.#client.config.systemClockOffset));
    const scope = `${now.slice(0, 8)}/${endpoint.region}/${endpoint.service}/aws4_request`;
    const body = request.body;
    const headers: Record<string, string> = {
      ...request.headers,
      host: endpoint.url.host,
      'x-amz-content-sha256': body === undefined ? emptySha256 : (request.payloadHash ?? unsignedPayload),
      'x-amz-date': now,
      ...(credentials.sessionToken === undefined ? {} : { 'x-amz-security-token': credentials.sessionToken }),
    };
    headers.authorization = authorization(
      { ...target, headers },
      { accessKeyId: credentials.accessKeyId, scope, key: this.#keyFor(scope, credentials.secretAccessKey) },
    );
    // a GET sends no length (as the SDK), every other request its body's (0 without one)
    if (target.method !== 'GET')
      headers['content-length'] = String(body?.reduce((sum, chunk) => sum + chunk.length, 0) ?? 0);
    headers['user-agent'] = 'lc2-backup';
    return headers;
  }

  /** The signing key of a scope (day/region/service), derived once a day per secret. */
  #keyFor(scope: string, secret: string): KeyObject {
    const cached = this.#signing;
    if (cached !== undefined && cached.scope === scope && cached.secret === secret) return cached.key;
    const key = signingKey(secret, scope);
    this.#signing = { scope, secret, key };
    return key;
  }

  #request(outgoing: OutgoingRequest): Promise<http.IncomingMessage> {
    const { connectionTimeoutMs, requestTimeoutMs } = this.#options;
    const { url } = outgoing;
    return new Promise((resolve, reject) => {
      const request = (this.#secure ? https : http).request(
        {
          protocol: url.protocol,
          hostname: url.hostname,
          port: url.port,
          method: outgoing.method,
          path: outgoing.path,
          headers: outgoing.headers,
          agent: this.#agent,
        },
        resolve,
      );
      request.on('error', (err: NodeJS.ErrnoException) => {
        const stale = request.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
        reject(stale ? new StaleSocketError(err) : err);
      });
      // a socket idle this long (connecting, waiting for the response or for more of its body) is
      // a hung request
      const idleMs = requestTimeoutMs ?? connectionTimeoutMs;
      if (idleMs !== undefined) {
        request.setTimeout(idleMs, () => {
          request.destroy(
            Object.assign(new Error(`no response within ${idleMs} ms`), { name: 'TimeoutError' }),
          );
        });
      }
      // the chunks as they are: the socket queues them, nothing is copied into one buffer
      for (const chunk of outgoing.body) request.write(chunk);
      request.end();
    });
  }
}
