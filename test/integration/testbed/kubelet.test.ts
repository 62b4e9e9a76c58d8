// The kubelet harness (test/env/kubelet.ts) on the real API server and kube-controller-manager:
// Jobs run end to end through the real Job controller, pods get real status, logs are served
// through the API server, deadlines and deletions kill the processes, and the node stays Ready.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  type V1Container,
  type V1Job,
  type V1JobSpec,
  type V1Pod,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeConfig, testbed, uniqueName, useNamespace } from '../../env/fixtures.ts';
import { startKubelet, type Kubelet } from '../../env/kubelet.ts';

const ns = useNamespace('kubelet');
const kc = kubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const workDir = mkdtempSync(join(tmpdir(), 'lc2-kubelet-test-'));
// a Node nobody heartbeats: the node lifecycle controller must give up on it, and not on ours
const controlNode = uniqueName('no-heartbeat');
let kubelet: Kubelet;
let startedAt = 0;

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function podSpec(
  script: string,
  extra: Partial<V1PodSpec> = {},
  container: Partial<V1Container> = {},
): V1PodSpec {
  return {
    restartPolicy: 'Never',
    containers: [
      {
        name: 'main',
        image: 'lc2-backup:test',
        command: ['node', '-e', script],
        terminationMessagePolicy: 'FallbackToLogsOnError',
        ...container,
      },
    ],
    ...extra,
  };
}

async function createJob(
  name: string,
  script: string,
  spec: Partial<V1JobSpec> = {},
  pod: Partial<V1PodSpec> = {},
): Promise<void> {
  await batch.createNamespacedJob({
    namespace: ns.name,
    body: {
      metadata: { name },
      spec: { backoffLimit: 0, ...spec, template: { spec: podSpec(script, pod) } },
    },
  });
}

async function runJob(
  name: string,
  script: string,
  spec: Partial<V1JobSpec> = {},
  pod: Partial<V1PodSpec> = {},
): Promise<V1Job> {
  await createJob(name, script, spec, pod);
  return jobFinished(name);
}

async function jobFinished(name: string): Promise<V1Job> {
  return eventually(`Job ${name} to finish`, async () => {
    const job = await batch.readNamespacedJob({ name, namespace: ns.name });
    const done = job.status?.conditions?.some(
      (c) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True',
    );
    return done === true ? job : undefined;
  });
}

function condition(job: V1Job, type: string) {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

async function podsOf(job: string): Promise<V1Pod[]> {
  const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: `job-name=${job}` });
  return pods.items;
}

function terminated(pod: V1Pod) {
  const state = pod.status?.containerStatuses?.[0]?.state?.terminated;
  if (!state) throw new Error(`pod ${pod.metadata?.name ?? ''} has no terminated container`);
  return state;
}

/** Creates a Pod, retrying while the namespace's default service account does not exist yet. */
async function createPod(name: string, spec: V1PodSpec): Promise<void> {
  await eventually(`pod ${name} to be created`, () =>
    core
      .createNamespacedPod({ namespace: ns.name, body: { metadata: { name }, spec } })
      .then(() => true)
      .catch((err: unknown) => {
        if (/serviceaccount/i.test(String((err as { body?: unknown }).body ?? err))) return undefined;
        throw err;
      }),
  );
}

async function podFinished(name: string): Promise<V1Pod> {
  return eventually(`pod ${name} to finish`, async () => {
    const pod = await core.readNamespacedPod({ name, namespace: ns.name });
    return ['Succeeded', 'Failed'].includes(pod.status?.phase ?? '') ? pod : undefined;
  });
}

beforeAll(async () => {
  await core.createNode({
    body: {
      metadata: { name: controlNode },
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            lastHeartbeatTime: new Date(),
            lastTransitionTime: new Date(),
          },
        ],
      },
    },
  });
  await core.createNamespacedSecret({
    namespace: ns.name,
    body: { metadata: { name: 'creds' }, stringData: { password: 's3cret' } },
  });
  await core.createNamespacedConfigMap({
    namespace: ns.name,
    body: { metadata: { name: 'settings' }, data: { region: 'eu-west-1' } },
  });
  // a pod that exists before the kubelet starts
  const printEnv = `console.log(JSON.stringify(Object.fromEntries(
    ['PASSWORD', 'REGION', 'POD', 'NS', 'GREETING', 'EXTRA', 'KUBECONFIG', 'HOSTNAME'].map((k) => [k, process.env[k]]))))`;
  await createPod(
    'early',
    podSpec(
      printEnv,
      {},
      {
        env: [
          { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
          { name: 'REGION', valueFrom: { configMapKeyRef: { name: 'settings', key: 'region' } } },
          { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'GREETING', value: 'hello $(POD) in $(REGION), $$(POD)' },
        ],
      },
    ),
  );
  kubelet = await startKubelet({
    kubeConfig: kc,
    namespaces: [ns.name],
    commands: { node: [process.execPath] },
    env: { KUBECONFIG: testbed().kube.kubeconfig, EXTRA: 'from the harness' },
    cwd: workDir,
  });
  startedAt = Date.now();
});

afterAll(async () => {
  if (startedAt > 0) await kubelet.stop();
  await core.deleteNode({ name: controlNode }).catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
});

describe('kubelet harness', () => {
  it('runs a pod created before it started, with env from values, Secrets, ConfigMaps and fields', async () => {
    const pod = await podFinished('early');
    expect(pod.spec?.nodeName).toBe(kubelet.nodeName);
    expect(pod.status?.phase).toBe('Succeeded');
    expect(JSON.parse(kubelet.logs(ns.name, 'early'))).toEqual({
      PASSWORD: 's3cret',
      REGION: 'eu-west-1',
      POD: 'early',
      NS: ns.name,
      GREETING: 'hello early in eu-west-1, $(POD)',
      EXTRA: 'from the harness',
      KUBECONFIG: testbed().kube.kubeconfig,
      HOSTNAME: 'early',
    });
  });

  it('runs a Job to Complete through the Job controller, with real pod status and logs', async () => {
    const job = await runJob(
      'ok',
      'console.log("hello from " + process.env.HOSTNAME); console.error("to stderr")',
    );
    expect(condition(job, 'Complete')).toBeDefined();
    expect(job.status?.succeeded).toBe(1);
    const [pod] = await podsOf('ok');
    if (!pod) throw new Error('no pod');
    const name = pod.metadata?.name ?? '';
    expect(pod.spec?.nodeName).toBe(kubelet.nodeName);
    expect(pod.status?.phase).toBe('Succeeded');
    expect(pod.status?.startTime).toBeInstanceOf(Date);
    expect(pod.status?.conditions?.find((c) => c.type === 'PodScheduled')?.status).toBe('True');
    expect(terminated(pod)).toMatchObject({ exitCode: 0, reason: 'Completed' });
    // the Job controller counted the pod and removed its tracking finalizer
    expect(pod.metadata?.finalizers ?? []).not.toContain('batch.kubernetes.io/job-tracking');
    const output = `hello from ${name}\nto stderr\n`;
    expect(kubelet.logs(ns.name, name)).toBe(output);
    // the log endpoint, through the API server, as a controller would read it
    expect(await core.readNamespacedPodLog({ name, namespace: ns.name })).toBe(output);
    expect(await core.readNamespacedPodLog({ name, namespace: ns.name, tailLines: 1 })).toBe('to stderr\n');
  });

  it('ends a failing Job Failed, with the tail of the output in the pod status', async () => {
    const job = await runJob(
      'fails',
      'for (let i = 0; i < 100; i++) console.log("line " + i); process.exit(3)',
    );
    expect(condition(job, 'Failed')?.reason).toBe('BackoffLimitExceeded');
    const [pod] = await podsOf('fails');
    if (!pod) throw new Error('no pod');
    expect(pod.status?.phase).toBe('Failed');
    const state = terminated(pod);
    expect(state).toMatchObject({ exitCode: 3, reason: 'Error' });
    // FallbackToLogsOnError: the last 80 lines (at most 2 KiB)
    expect(state.message).toBe(Array.from({ length: 80 }, (_, i) => `line ${i + 20}\n`).join(''));
  });

  it('kills a process that outlives the pod activeDeadlineSeconds (DeadlineExceeded)', async () => {
    const job = await runJob(
      'deadline',
      'console.log(process.pid); setTimeout(() => undefined, 600_000)',
      {},
      { activeDeadlineSeconds: 2 },
    );
    expect(condition(job, 'Failed')).toBeDefined();
    const [pod] = await podsOf('deadline');
    if (!pod) throw new Error('no pod');
    expect(pod.status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded' });
    expect(terminated(pod).exitCode).toBe(143);
    expect(isAlive(Number(kubelet.logs(ns.name, pod.metadata?.name ?? '')))).toBe(false);
  });

  it('kills the process of a pod the Job controller deletes (Job activeDeadlineSeconds)', async () => {
    await createJob('job-deadline', 'setTimeout(() => undefined, 600_000)', { activeDeadlineSeconds: 3 });
    const [name, pid] = await eventually('the process to run', async () => {
      const pod = (await podsOf('job-deadline'))[0];
      const running = pod && kubelet.pid(ns.name, pod.metadata?.name ?? '');
      return running === undefined ? undefined : ([pod?.metadata?.name ?? '', running] as const);
    });
    expect(isAlive(pid)).toBe(true);
    const job = await jobFinished('job-deadline');
    expect(condition(job, 'Failed')?.reason).toBe('DeadlineExceeded');
    // graceful deletion, the harness's final DELETE, the Job controller's finalizer removal
    await eventually('the pod to be gone', async () =>
      (await podsOf('job-deadline')).length === 0 ? true : undefined,
    );
    expect(isAlive(pid)).toBe(false);
    expect(kubelet.pid(ns.name, name)).toBeUndefined();
  });

  it('retries a failed pod (backoffLimit 1): the second attempt succeeds', async () => {
    const marker = join(workDir, 'retry-marker');
    const script = `const fs = require('node:fs');
      if (!fs.existsSync(${JSON.stringify(marker)})) { fs.writeFileSync(${JSON.stringify(marker)}, ''); console.log('first'); process.exit(1); }
      console.log('second');`;
    const job = await runJob('retry', script, { backoffLimit: 1 });
    expect(condition(job, 'Complete')).toBeDefined();
    expect(job.status).toMatchObject({ succeeded: 1, failed: 1 });
    const pods = await podsOf('retry');
    expect(pods.map((p) => p.status?.phase).sort()).toEqual(['Failed', 'Succeeded']);
    const byPhase: Record<string, string> = Object.fromEntries(
      pods.map((p) => [p.status?.phase ?? '', p.metadata?.name ?? '']),
    );
    expect(kubelet.logs(ns.name, byPhase.Failed ?? '')).toBe('first\n');
    expect(kubelet.logs(ns.name, byPhase.Succeeded ?? '')).toBe('second\n');
  });

  it('runs many pods at once', async () => {
    const job = await runJob('parallel', 'setTimeout(() => console.log("done"), 3000)', {
      parallelism: 6,
      completions: 6,
    });
    expect(condition(job, 'Complete')).toBeDefined();
    expect(job.status?.succeeded).toBe(6);
    const spans = (await podsOf('parallel')).map((p) => terminated(p));
    const lastStart = Math.max(...spans.map((s) => s.startedAt?.getTime() ?? 0));
    const firstEnd = Math.min(...spans.map((s) => s.finishedAt?.getTime() ?? 0));
    expect(lastStart).toBeLessThanOrEqual(firstEnd); // all six ran at the same time
  });

  it('fails a pod whose command it does not know, saying so', async () => {
    await createPod('unknown', podSpec('', {}, { command: ['pg_dumpall'] }));
    const pod = await podFinished('unknown');
    expect(pod.status?.phase).toBe('Failed');
    const state = terminated(pod);
    expect(state.reason).toBe('StartError');
    expect(state.message).toMatch(/no local program for command "pg_dumpall"; known: node/);
  });

  it('waits for a missing Secret (CreateContainerConfigError) and runs once it exists', async () => {
    await createPod(
      'late',
      podSpec(
        'console.log(process.env.TOKEN)',
        {},
        { env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'late', key: 'token' } } }] },
      ),
    );
    const waiting = await eventually('the container to wait for its Secret', async () => {
      const pod = await core.readNamespacedPod({ name: 'late', namespace: ns.name });
      return pod.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError'
        ? pod
        : undefined;
    });
    expect(waiting.status?.containerStatuses?.[0]?.state?.waiting?.message).toBe('secret "late" not found');
    await core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'late' }, stringData: { token: 't0ken' } },
    });
    expect((await podFinished('late')).status?.phase).toBe('Succeeded');
    expect(kubelet.logs(ns.name, 'late')).toBe('t0ken\n');
  });

  it('keeps its node Ready past the node monitor grace period, unlike a node without heartbeats', async () => {
    const isUnreachable = (n: { spec?: { taints?: { key: string; effect: string }[] } }) =>
      n.spec?.taints?.some((t) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoExecute') ===
      true;
    // kube-controller-manager's --node-monitor-grace-period is 50 s
    await eventually(
      'the node without heartbeats to be tainted unreachable',
      async () => (isUnreachable(await core.readNode({ name: controlNode })) ? true : undefined),
      120_000,
    );
    while (Date.now() - startedAt < 65_000) await sleep(1000);
    const node = await core.readNode({ name: kubelet.nodeName });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'KubeletReady',
    });
    expect(node.spec?.taints ?? []).toEqual([]);
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: kubelet.nodeName, namespace: 'kube-node-lease' });
    // a MicroTime: client-node leaves it a string
    expect(Date.now() - Date.parse(String(lease.spec?.renewTime))).toBeLessThan(20_000);
    // and it still runs pods
    expect(condition(await runJob('after-grace', 'console.log("still here")'), 'Complete')).toBeDefined();
  }, 180_000);
});
