// What bench/controller-scale.ts and its controller process (controller-scale-child.ts) share.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { kubeRequest, type TestbedInfo } from '../test/env/testbed.ts';

const here = dirname(fileURLToPath(import.meta.url));
const group = 'backup.liferay.cloud';
const version = 'v1alpha1';

/** What the parent tells the child. */
export interface ChildOptions {
  kubeconfig: string;
  projects: number;
  objects: number;
  projectConcurrency: number;
  globalConcurrency: number;
  leaseNamespace: string;
  queueConcurrency: number;
  /** API calls in flight at most (the controller's --api-concurrency). */
  apiConcurrency: number;
  /** The controller's --api-http1: its calls on HTTP/1.1 keep-alive connections, not one HTTP/2 connection. */
  http1: boolean;
  backupDelayMs: number;
  /** `pglite://memory` (in the controller's process) or the test bed's PostgreSQL (the default). */
  catalog: 'postgres' | 'pglite';
  /** `null`: run the null controller (bench/controller-scale-child.ts) instead of ours: the floor. */
  peer: 'none' | 'null';
}

/**
 * client-node 2.0.1 builds a new undici Agent for every request (`createDispatcher`, called from
 * `applySecurityAuthentication` whenever the kubeconfig has TLS settings: a CA, a client
 * certificate or insecure-skip-tls-verify), so no connection is ever reused: every API call pays
 * a TCP + TLS handshake on both ends and leaves its socket behind until it times out. This
 * memoizes the dispatcher per cluster and TLS settings for the benchmark's own client (creates,
 * watches), so the load generator does not burden the API server with handshakes. (The
 * controller does not use client-node: src/kube/client.ts keeps a pool of connections.)
 */
export function shareConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createDispatcher: (cluster: unknown, options: unknown) => unknown };
  const create = target.createDispatcher.bind(kc);
  const cache = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    const key = JSON.stringify([cluster, agentOptions]);
    if (!cache.has(key)) cache.set(key, create(cluster, agentOptions));
    return cache.get(key);
  };
  return kc;
}

/** deploy/crds/*.yaml by server-side apply, then waits until each is Established. */
export async function installCrds(kube: TestbedInfo['kube']): Promise<void> {
  const dir = join(here, '..', 'deploy', 'crds');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const body = parseYaml(readFileSync(join(dir, file), 'utf8')) as { metadata: { name: string } };
    const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${body.metadata.name}`;
    const applied = await kubeRequest(kube.server, kube.token, {
      method: 'PATCH',
      path: `${path}?fieldManager=lc2-backup-bench&force=true`,
      headers: { 'content-type': 'application/apply-patch+yaml' },
      body,
    });
    if (applied.status >= 300) throw new Error(`applying ${file}: ${applied.status} ${applied.body}`);
    for (let i = 0; ; i++) {
      const got = JSON.parse((await kubeRequest(kube.server, kube.token, { path })).body) as {
        status?: { conditions?: { type: string; status: string }[] };
      };
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 100) throw new Error(`CRD ${body.metadata.name} not Established after 10 s`);
      await sleep(100);
    }
    // Established is not yet served: until the storage for the kind is ready, lists answer 429
    const served = `/apis/${group}/${version}/${body.metadata.name.split('.')[0] ?? ''}?limit=1`;
    for (let i = 0; (await kubeRequest(kube.server, kube.token, { path: served })).status !== 200; i++) {
      if (i > 100) throw new Error(`CRD ${body.metadata.name} not served after 10 s`);
      await sleep(100);
    }
  }
}

/**
 * CPU time (user + system) a process has used so far, in ms, from /proc (0 when it is gone);
 * `withChildren`: with that of its children it waited for (a postmaster's exited backends).
 */
export function cpuMsOf(pid: number | undefined, withChildren = false): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const used = (withChildren ? [11, 12, 13, 14] : [11, 12]).map((i) => Number(fields[i] ?? 0));
    return used.reduce((a, b) => a + b, 0) * 10;
  } catch {
    return 0;
  }
}

/** `fn` over `items`, `width` at a time. */
export async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await fn(item);
      }
    }),
  );
}
