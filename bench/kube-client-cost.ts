// The controller's Kubernetes client's own CPU per call (src/kube/client.ts: scheduling, request
// building, reading and parsing the answer), against the least node:http does for the same call:
// a bare keep-alive request with the same headers and body whose answer is read and parsed. Both
// talk plain HTTP to a local server in a child process that answers every PATCH with a
// BackupRequest-sized JSON object (TLS is the same for both and left out, so the difference is
// the client's JavaScript). Alternated, several rounds; client CPU from process.cpuUsage(). A
// third contender, a bare node:http2 session (h2c: every call a stream on one connection, as
// client-go talks to the API server), shows what HTTP/2 would save: its frames of many calls go
// out in one write.
//
//   node bench/kube-client-cost.ts [--calls 6000] [--parallel 32] [--rounds 3]
import { fork } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import { parseArgs } from 'node:util';
import { KubeClient, mergePatch } from '../src/kube/client.ts';
import { median } from './measure.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '6000' },
    parallel: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
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

if (values.serve) {
  const answerAll = (req: http.IncomingMessage | http2.Http2ServerRequest, res: AnswerTo): void => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(answer);
    });
  };
  const h1 = http.createServer({ keepAliveTimeout: 60_000 }, answerAll);
  const h2 = http2.createServer({ peerMaxConcurrentStreams: 1000 }, answerAll);
  const portOf = (server: { address: () => unknown }): number => {
    const address = server.address();
    return typeof address === 'object' && address !== null ? (address as { port: number }).port : 0;
  };
  h1.listen(0, '127.0.0.1', () => {
    h2.listen(0, '127.0.0.1', () => {
      process.send?.([portOf(h1), portOf(h2)]);
    });
  });
} else {
  await main();
}

async function main(): Promise<void> {
  const calls = Number(values.calls);
  const parallel = Number(values.parallel);
  const rounds = Number(values.rounds);
  const child = fork(new URL(import.meta.url).pathname, ['--serve'], { stdio: 'inherit' });
  const [port, h2Port] = await new Promise<number[]>((resolve) =>
    child.once('message', (m) => {
      resolve(m as number[]);
    }),
  );
  const path = '/apis/backup.liferay.cloud/v1alpha1/namespaces/project-0001/backuprequests/bench-0001/status';
  const body = {
    metadata: { resourceVersion: '123455' },
    status: { state: 'Pending', reason: 'WaitingForSlot', message: 'z'.repeat(90) },
  };

  const kube = new KubeClient(
    {
      server: `http://127.0.0.1:${port}`,
      insecureSkipTLSVerify: false,
      credentials: () => Promise.resolve({ token: 'bench' }),
      source: 'bench',
    },
    { maxInFlight: parallel },
  );
  const ours = (): Promise<unknown> => kube.request('PATCH', path, { body, contentType: mergePatch });

  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel, maxFreeSockets: parallel });
  const bare = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const payload = Buffer.from(JSON.stringify(body));
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'PATCH',
          agent,
          headers: {
            accept: 'application/json',
            authorization: 'Bearer bench',
            'content-type': mergePatch,
            'content-length': payload.length,
          },
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

  const session = http2.connect(`http://127.0.0.1:${h2Port ?? 0}`);
  const bareH2 = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const stream = session.request({
        ':method': 'PATCH',
        ':path': path,
        accept: 'application/json',
        authorization: 'Bearer bench',
        'content-type': mergePatch,
      });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      });
      stream.on('error', reject);
      stream.end(JSON.stringify(body));
    });

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

  for (const warm of [ours, bare, bareH2]) for (let i = 0; i < 500; i++) await warm();
  const results = { ours: [] as number[], bare: [] as number[], h2: [] as number[] };
  for (let round = 1; round <= rounds; round++) {
    results.ours.push(await measure(ours));
    results.bare.push(await measure(bare));
    results.h2.push(await measure(bareH2));
    process.stdout.write(
      `round ${round}: ours ${(results.ours.at(-1) ?? 0).toFixed(0)} µs/call, bare node:http ${(results.bare.at(-1) ?? 0).toFixed(0)} µs/call, bare node:http2 ${(results.h2.at(-1) ?? 0).toFixed(0)} µs/call\n`,
    );
  }
  const [o, b, h] = [median(results.ours), median(results.bare), median(results.h2)];
  process.stdout.write(
    `kube-client-cost: ${calls} status PATCHes × ${rounds} rounds, ${parallel} at once, ${answer.length}-byte answers\n` +
      `client CPU per call (median): ours ${o.toFixed(0)} µs, bare node:http ${b.toFixed(0)} µs, bare node:http2 ${h.toFixed(0)} µs — ours/bare ${(o / b).toFixed(2)}×, ours/http2 ${(o / h).toFixed(2)}×\n`,
  );
  kube.close();
  agent.destroy();
  session.close();
  child.kill();
}
