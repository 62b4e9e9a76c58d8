// What bench/controller-scale.ts and its controller process (controller-scale-child.ts) share.
import type { KubeConfig } from '@kubernetes/client-node';

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
