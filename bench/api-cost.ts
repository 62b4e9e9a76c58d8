// What each kind of API call the controller makes costs the API server (issue 5: the controller's
// reaction under a burst is bound by the API server, and which calls load it decides what to cut).
// On the test bed's etcd + kube-apiserver (+ kube-controller-manager, whose garbage collector
// watches every kind, as in a cluster), with a watch open on BackupRequests and on the slot Leases
// as the controller's informers have: N calls of each kind, `--parallel` at once, through the
// controller's own client (src/kube/client.ts); for each kind the API server's and etcd's CPU per
// call (from /proc) and the calls answered per second.
//
//   node bench/api-cost.ts [--calls 1000] [--parallel 32]
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { finalizer } from '../src/controller/lifecycle.ts';
import { readyCondition } from '../src/controller/requestStatus.ts';
import { poolLabel } from '../src/controller/slots.ts';
import { KubeClient, mergePatch } from '../src/kube/client.ts';
import { Informer } from '../src/kube/informer.ts';
import { customPath, eventPath, leasePath } from '../src/kube/paths.ts';
import { Testbed } from '../test/env/testbed.ts';
import { cpuMsOf, inParallel, installCrds } from './controller-scale-shared.ts';

const { values } = parseArgs({
  options: { calls: { type: 'string', default: '1000' }, parallel: { type: 'string', default: '32' } },
});
const calls = Number(values.calls);
const parallel = Number(values.parallel);
const namespace = 'api-cost';
const leases = 'api-cost-leases';

const log = (message: string): void => {
  process.stderr.write(`api-cost: ${message}\n`);
};

const name = (i: number): string => `req-${String(i).padStart(6, '0')}`;
const message = 'waiting for a slot: all 2 of project p000 slots are taken; position 3 in line';
const now = (): string => new Date().toISOString();

/** A merge patch (or a JSON Patch) of request `i`'s status, as the controller writes it. */
function patchStatus(kube: KubeClient, i: number, status: Record<string, unknown>, asJsonPatch = false) {
  return kube.request('PATCH', customPath('backuprequests', namespace, name(i), 'status'), {
    body: asJsonPatch ? [{ op: 'add', path: '/status', value: status }] : { status },
    contentType: asJsonPatch ? 'application/json-patch+json' : mergePatch,
  });
}

/** A first answer, as the controller writes it to a request that must wait. */
const waitingForSlot = (): Record<string, unknown> => ({
  state: 'Pending',
  reason: 'WaitingForSlot',
  message,
  observedGeneration: 1,
  conditions: [readyCondition('False', 'WaitingForSlot', message, 1)],
});

/** The calls of one request's life, in the order the controller makes them. */
const kinds: { kind: string; call: (kube: KubeClient, i: number) => Promise<unknown> }[] = [
  {
    kind: 'POST backuprequests (the create, by the user)',
    call: (kube, i) =>
      kube.request('POST', customPath('backuprequests', namespace), {
        body: {
          apiVersion: 'backup.liferay.cloud/v1alpha1',
          kind: 'BackupRequest',
          metadata: { name: name(i) },
          spec: {
            projectId: 'p000',
            environment: 'prd',
            provider: 'aws',
            database: { type: 'snapshot', instanceId: 'db' },
            documentLibrary: { sourceBucket: 'p000-src', destinationBucket: 'p000-dst' },
          },
        },
      }),
  },
  {
    kind: 'PATCH status: WaitingForSlot (a first answer)',
    call: (kube, i) => patchStatus(kube, i, waitingForSlot()),
  },
  {
    kind: 'POST leases (a slot taken for the first time)',
    call: (kube, i) =>
      kube.request('POST', leasePath(leases), {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: `lc2-slot-${name(i)}`, labels: { [poolLabel]: 'p000' } },
          spec: { holderIdentity: `${namespace}/${name(i)}`, acquireTime: now().replace('Z', '000Z') },
        },
      }),
  },
  {
    kind: 'PATCH status: InProgress',
    call: (kube, i) =>
      patchStatus(kube, i, {
        state: 'InProgress',
        reason: 'Started',
        message: 'backing up the database, then the document library',
        backupId: `p000-prd-${name(i)}`,
        startTime: now(),
        conditions: [readyCondition('False', 'InProgress', 'backup running', 1)],
      }),
  },
  {
    kind: 'PATCH backuprequests: finalizer',
    call: (kube, i) =>
      kube.request('PATCH', customPath('backuprequests', namespace, name(i)), {
        body: { metadata: { finalizers: [finalizer] } },
        contentType: mergePatch,
      }),
  },
  {
    kind: 'PATCH status: Succeeded',
    call: (kube, i) =>
      patchStatus(kube, i, {
        state: 'Succeeded',
        reason: 'BackupCompleted',
        message: 'backed up 5 documents and the database',
        completionTime: now(),
        duration: '1s',
        database: { snapshotId: 'snap', size: '1 KiB', status: 'Succeeded' },
        documentLibrary: { objectCount: 5, totalSize: '1 KiB', status: 'Succeeded', manifestPath: 'x' },
        conditions: [readyCondition('True', 'BackupCompleted', 'backup completed', 1)],
      }),
  },
  // the same first answer two other ways: is it the object's size, or the kind of patch?
  {
    kind: 'PATCH status: three fields only',
    call: (kube, i) =>
      patchStatus(kube, i, { state: 'Pending', reason: 'WaitingForSlot', message: `${message} ` }),
  },
  {
    kind: 'PATCH status: WaitingForSlot as a JSON Patch',
    call: (kube, i) => patchStatus(kube, i, waitingForSlot(), true),
  },
  {
    kind: 'POST events (Completed)',
    call: (kube, i) =>
      kube.request('POST', eventPath(namespace), {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { generateName: `${name(i)}.` },
          involvedObject: {
            apiVersion: 'backup.liferay.cloud/v1alpha1',
            kind: 'BackupRequest',
            namespace,
            name: name(i),
          },
          type: 'Normal',
          reason: 'Completed',
          message: `backup p000-prd-${name(i)} succeeded`,
          source: { component: 'lc2-backup' },
          firstTimestamp: now(),
          lastTimestamp: now(),
          count: 1,
        },
      }),
  },
];

const bed = await Testbed.create();
try {
  log('starting kubernetes (etcd, kube-apiserver, kube-controller-manager)');
  const info = await bed.up(['kubernetes']);
  if (!info.kube) throw new Error('the test bed did not start Kubernetes');
  await installCrds(info.kube);
  const kube = KubeClient.load({ kubeconfig: info.kube.kubeconfig, maxInFlight: parallel });
  for (const ns of [namespace, leases]) {
    await kube.request('POST', '/api/v1/namespaces', { body: { metadata: { name: ns } } });
  }
  // the controller's informers watch both kinds; each write is sent to them
  const watches = [
    new Informer(kube, customPath('backuprequests'), {}),
    new Informer(kube, leasePath(leases), {}),
  ];
  for (const w of watches) await w.start();
  const pids = bed.pids();
  const rows: string[][] = [['call', 'calls', 'calls/s', 'kube-apiserver CPU ms/call', 'etcd CPU ms/call']];
  for (const { kind, call } of kinds) {
    const before = { api: cpuMsOf(pids['kube-apiserver']), etcd: cpuMsOf(pids.etcd), t: performance.now() };
    await inParallel(
      Array.from({ length: calls }, (_, i) => i),
      parallel,
      (i) => call(kube, i),
    );
    const seconds = (performance.now() - before.t) / 1000;
    const api = (cpuMsOf(pids['kube-apiserver']) - before.api) / calls;
    const etcd = (cpuMsOf(pids.etcd) - before.etcd) / calls;
    rows.push([kind, String(calls), (calls / seconds).toFixed(0), api.toFixed(2), etcd.toFixed(2)]);
    log(`${kind}: ${(calls / seconds).toFixed(0)} calls/s, API server ${api.toFixed(2)} ms/call`);
  }
  for (const w of watches) await w.stop();
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  for (const r of rows) {
    process.stdout.write(
      `${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')}\n`,
    );
  }
  process.stdout.write(
    `(${calls} calls of each kind, ${parallel} at once, through src/kube/client.ts; load average at the end ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})\n`,
  );
} finally {
  await bed.stop();
}
