// The controller's Kubernetes client's own CPU per call (src/kube/client.ts: scheduling, request
// building, reading and parsing the answer), against the least node does for the same call: a
// bare request with the same headers and body whose answer is read and parsed. The server, in a
// child process, answers every PATCH with a BackupRequest-sized JSON object. Alternated, several
// rounds; client CPU from process.cpuUsage().
//
// Over TLS (the default; the API server is always reached so) the server speaks HTTP/2 and
// HTTP/1.1 on one port, chosen by ALPN, and four contenders run: ours as the controller runs it
// (one HTTP/2 connection, every call a stream), ours with `http2: false` (the controller's
// --api-http1: a pool of HTTP/1.1 keep-alive connections), a bare node:http2 session and a bare
// node:https keep-alive request. With --plain, the same over plain HTTP: ours (HTTP/1.1 there),
// a bare node:http request and a bare node:http2 session over h2c.
//
//   node bench/kube-client-cost.ts [--calls 6000] [--parallel 32] [--rounds 3] [--plain]
import { fork } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { parseArgs } from 'node:util';
import { KubeClient, mergePatch } from '../src/kube/client.ts';
import { selfSignedCertificate } from '../test/env/certificate.ts';
import { median } from './measure.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '6000' },
    parallel: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    plain: { type: 'boolean', default: false },
    serve: { type: 'boolean', default: false },
  },
});

/** A BackupRequest as the API server answers a status write (managedFields included). */
const answer = JSON.stringify({
  apiVersion: 'backup.liferay.cloud/v1alpha1',
  kind: 'BackupRequest',
  metadata: {
    name: 'bench-0001',
    namespace: 'project-0001',
    resourceVersion: '123456',
    generation: 1,
    creationTimestamp: '2026-12-06T23:00:00Z',
    managedFields: Array.from({ length: 4 }, (_, i) => ({
      manager: `manager-${i}`,
      operation: 'Update',
      fieldsV1: { 'f:status': { 'f:state': {}, 'f:reason': {}, 'f:message': {}, 'f:conditions': {} } },
    })),
  },
  spec: { projectId: 'project-0001', environment: 'prd', retention: '30d', documentLibrary: {} },
  status: {
    state: 'Pending',
    reason: 'WaitingForSlot',
    message: 'waiting for a slot: all 2 of project project-0001 slots are taken; position 3 in line',
    conditions: [{ type: 'Ready', status: 'False', reason: 'WaitingForSlot', message: 'x'.repeat(90) }],
  },
});

type AnswerTo = http.ServerResponse | http2.Http2ServerResponse;
type Certificate = { key: string; cert: string };
const serverName = 'kube-client-cost.invalid';

/** The servers: [HTTP/1.1, h2c] in plain HTTP, or one TLS port that speaks both (ALPN). */
function serve(certificate: Certificate | undefined): void {
  const answerAll = (req: http.IncomingMessage | http2.Http2ServerRequest, res: AnswerTo): void => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(answer);
    });
  };
  const portOf = (server: { address: () => unknown }): number => {
    const address = server.address();
    return typeof address === 'object' && address !== null ? (address as { port: number }).port : 0;
  };
  if (certificate !== undefined) {
    const both = http2.createSecureServer(
      { ...certificate, allowHTTP1: true, peerMaxConcurrentStreams: 1000 },
      answerAll,
    );
    both.listen(0, '127.0.0.1', () => process.send?.([portOf(both)]));
    return;
  }
  const h1 = http.createServer({ keepAliveTimeout: 60_000 }, answerAll);
  const h2 = http2.createServer({ peerMaxConcurrentStreams: 1000 }, answerAll);
  h1.listen(0, '127.0.0.1', () => {
    h2.listen(0, '127.0.0.1', () => {
      process.send?.([portOf(h1), portOf(h2)]);
    });
  });
}

interface Contender {
  name: string;
  call: () => Promise<unknown>;
  close: () => void;
}

const path = '/apis/backup.liferay.cloud/v1alpha1/namespaces/project-0001/backuprequests/bench-0001/status';
const body = {
  metadata: { resourceVersion: '123455' },
  status: { state: 'Pending', reason: 'WaitingForSlot', message: 'z'.repeat(90) },
};
const headers = { accept: 'application/json', authorization: 'Bearer bench', 'content-type': mergePatch };

function ours(
  name: string,
  server: string,
  parallel: number,
  tls?: { ca: Buffer; http2: boolean },
): Contender {
  const kube = new KubeClient(
    {
      server,
      insecureSkipTLSVerify: false,
      ...(tls === undefined ? {} : { ca: tls.ca, tlsServerName: serverName }),
      credentials: () => Promise.resolve({ token: 'bench' }),
      source: 'bench',
    },
    { maxInFlight: parallel, ...(tls === undefined ? {} : { http2: tls.http2 }) },
  );
  return {
    name,
    call: () => kube.request('PATCH', path, { body, contentType: mergePatch }),
    close: () => {
      kube.close();
    },
  };
}

/** A bare keep-alive request (node:http or node:https) that reads and parses its answer. */
function bareHttp1(name: string, port: number, parallel: number, ca?: Buffer): Contender {
  const options = { keepAlive: true, maxSockets: parallel, maxFreeSockets: parallel };
  const agent =
    ca === undefined ? new http.Agent(options) : new https.Agent({ ...options, ca, servername: serverName });
  const send = ca === undefined ? http.request : https.request;
  const call = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const payload = Buffer.from(JSON.stringify(body));
      const req = send(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'PATCH',
          agent,
          headers: { ...headers, 'content-length': payload.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  return {
    name,
    call,
    close: () => {
      agent.destroy();
    },
  };
}

/** A bare node:http2 session (h2c, or TLS with ALPN h2): every call a stream on one connection. */
function bareHttp2(name: string, port: number, ca?: Buffer): Contender {
  const session =
    ca === undefined
      ? http2.connect(`http://127.0.0.1:${port}`)
      : http2.connect(`https://127.0.0.1:${port}`, { ca, servername: serverName });
  const call = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const stream = session.request({ ':method': 'PATCH', ':path': path, ...headers });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      });
      stream.on('error', reject);
      stream.end(JSON.stringify(body));
    });
  return {
    name,
    call,
    close: () => {
      session.close();
    },
  };
}

async function contenders(parallel: number): Promise<{ list: Contender[]; stop: () => void }> {
  const child = fork(new URL(import.meta.url).pathname, ['--serve'], { stdio: 'inherit' });
  const certificate = values.plain ? undefined : selfSignedCertificate(serverName);
  child.send({ certificate });
  const [port = 0, h2Port = 0] = await new Promise<number[]>((resolve) =>
    child.once('message', (m) => {
      resolve(m as number[]);
    }),
  );
  const list =
    certificate === undefined
      ? [
          ours('ours (HTTP/1.1)', `http://127.0.0.1:${port}`, parallel),
          bareHttp1('bare node:http', port, parallel),
          bareHttp2('bare node:http2 (h2c)', h2Port),
        ]
      : [
          ours('ours (HTTP/2)', `https://127.0.0.1:${port}`, parallel, {
            ca: Buffer.from(certificate.cert),
            http2: true,
          }),
          ours('ours (--api-http1)', `https://127.0.0.1:${port}`, parallel, {
            ca: Buffer.from(certificate.cert),
            http2: false,
          }),
          bareHttp2('bare node:http2', port, Buffer.from(certificate.cert)),
          bareHttp1('bare node:https', port, parallel, Buffer.from(certificate.cert)),
        ];
  return {
    list,
    stop: () => {
      for (const c of list) c.close();
      child.kill();
    },
  };
}

async function main(): Promise<void> {
  const calls = Number(values.calls);
  const parallel = Number(values.parallel);
  const rounds = Number(values.rounds);
  const { list, stop } = await contenders(parallel);

  /** Client CPU per call (µs) for `calls` calls, `parallel` at once. */
  const measure = async (call: () => Promise<unknown>): Promise<number> => {
    let next = 0;
    const started = process.cpuUsage();
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next++ < calls) await call();
      }),
    );
    const used = process.cpuUsage(started);
    return (used.user + used.system) / calls;
  };

  for (const c of list) for (let i = 0; i < 500; i++) await c.call();
  const results = new Map<string, number[]>(list.map((c) => [c.name, []]));
  for (let round = 1; round <= rounds; round++) {
    const line: string[] = [];
    for (const c of list) {
      const us = await measure(c.call);
      results.get(c.name)?.push(us);
      line.push(`${c.name} ${us.toFixed(0)} µs/call`);
    }
    process.stdout.write(`round ${round}: ${line.join(', ')}\n`);
  }
  const medians = list.map((c) => ({ name: c.name, us: median(results.get(c.name) ?? []) }));
  const us = (name: string): number => medians.find((m) => m.name === name)?.us ?? Number.NaN;
  // each of ours against the bare request of its protocol; over TLS also ours HTTP/2 against ours HTTP/1.1
  const pairs = values.plain
    ? [
        ['ours (HTTP/1.1)', 'bare node:http'],
        ['ours (HTTP/1.1)', 'bare node:http2 (h2c)'],
      ]
    : [
        ['ours (HTTP/2)', 'bare node:http2'],
        ['ours (--api-http1)', 'bare node:https'],
        ['ours (HTTP/2)', 'ours (--api-http1)'],
      ];
  const ratios = pairs.map(([a = '', b = '']) => `${a}/${b} ${(us(a) / us(b)).toFixed(2)}×`);
  process.stdout.write(
    `kube-client-cost: ${calls} status PATCHes × ${rounds} rounds, ${parallel} at once, ${answer.length}-byte answers, ${values.plain ? 'plain HTTP' : 'TLS'}\n` +
      `client CPU per call (median): ${medians.map((m) => `${m.name} ${m.us.toFixed(0)} µs`).join(', ')}\n` +
      `${ratios.join(', ')}\n`,
  );
  stop();
}

if (values.serve) {
  process.once('message', (m) => {
    serve((m as { certificate?: Certificate }).certificate);
  });
} else {
  await main();
}
