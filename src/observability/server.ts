// The controller's HTTP endpoints for Kubernetes and Prometheus, on one port ("metrics", 8080
// in the chart):
//   GET /metrics  the registry, in Prometheus text format
//   GET /healthz  200 while the process's event loop runs (the liveness probe)
//   GET /readyz   200 when the readiness callback says ready, else 503 with the reasons
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Readiness {
  ready: boolean;
  /** Why not (or what is ready), one line per reason; shown in /readyz's body. */
  reasons?: string[];
}

export type ReadinessCheck = () => Readiness | Promise<Readiness>;

export interface ObservabilityServerOptions {
  /** 0 picks a free port (tests); default 8080. */
  port?: number;
  /** Default: every interface. */
  host?: string;
  registry: Registry;
  readiness: ReadinessCheck;
  /** A readiness callback slower than this counts as not ready (default 2000 ms). */
  readinessTimeoutMs?: number;
  /** Applied to /readyz bodies (e.g. SecretScrubber.scrub), which may quote errors. */
  scrub?: (text: string) => string;
}

export interface ObservabilityServer {
  readonly port: number;
  close(): Promise<void>;
}

/** One named condition of readiness: true when met, else the reason it is not. */
export type Condition = () => true | string | Promise<true | string>;

/**
 * Readiness from named conditions, all of which must be met (checked concurrently): e.g.
 * `{ informers: () => synced || 'informers have not synced', catalog: … }`. A condition that
 * throws is not met, with its error as the reason.
 */
export function allOf(conditions: Record<string, Condition>): ReadinessCheck {
  return async () => {
    const results = await Promise.all(
      Object.entries(conditions).map(async ([name, condition]) => {
        try {
          const met = await condition();
          return met === true ? undefined : `${name}: ${met}`;
        } catch (err) {
          return `${name}: ${err instanceof Error ? err.message : String(err)}`;
        }
      }),
    );
    const reasons = results.filter((r): r is string => r !== undefined);
    return { ready: reasons.length === 0, reasons };
  };
}

async function withTimeout(check: ReadinessCheck, ms: number): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Readiness>((resolve) => {
    timer = setTimeout(() => {
      resolve({ ready: false, reasons: [`readiness check did not answer within ${ms} ms`] });
    }, ms);
  });
  try {
    return await Promise.race([
      Promise.resolve()
        .then(check)
        .catch((err: unknown) => ({
          ready: false,
          reasons: [`readiness check failed: ${err instanceof Error ? err.message : String(err)}`],
        })),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

async function handle(
  options: ObservabilityServerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, 'method not allowed\n');
    return;
  }
  switch (path) {
    case '/metrics':
      send(res, 200, await options.registry.metrics(), options.registry.contentType);
      return;
    case '/healthz':
      send(res, 200, 'ok\n');
      return;
    case '/readyz': {
      const readiness = await withTimeout(options.readiness, options.readinessTimeoutMs ?? 2000);
      const scrub = options.scrub ?? ((t: string) => t);
      const lines = (readiness.reasons ?? []).map((r) => scrub(r));
      const body = readiness.ready ? ['ready', ...lines] : ['not ready', ...lines];
      send(res, readiness.ready ? 200 : 503, `${body.join('\n')}\n`);
      return;
    }
    default:
      send(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
  }
}

/** Starts listening; resolves with the bound port once it accepts connections. */
export async function startObservabilityServer(
  options: ObservabilityServerOptions,
): Promise<ObservabilityServer> {
  const server = createServer((req, res) => {
    handle(options, req, res).catch((err: unknown) => {
      const scrub = options.scrub ?? ((t: string) => t);
      const message = err instanceof Error ? err.message : String(err);
      if (!res.headersSent) send(res, 500, `internal error: ${scrub(message)}\n`);
      else res.destroy();
    });
  });
  const port = options.port ?? 8080;
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => {
      reject(
        new Error(`observability server: cannot listen on port ${port}: ${err.message}`, { cause: err }),
      );
    };
    server.once('error', fail);
    server.listen(port, options.host, () => {
      server.off('error', fail);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => {
          if (err) reject(err);
          else resolve();
        });
        server.closeAllConnections();
      }),
  };
}
