// What the operations tests share: running a tool (helm, promtool, the Argo CD Lua runner) with
// its exit code and separate stdout/stderr, and sending rendered manifests to the test bed's
// API server by server-side apply (REST paths found through discovery).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubeRequest } from '../../env/testbed.ts';
import { testbed } from '../../env/fixtures.ts';

export const repoRoot = join(import.meta.dirname, '..', '..', '..');
export const chartDir = join(repoRoot, 'deploy', 'helm', 'lc2-backup');

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bin` to completion (never throws for a non-zero exit; the caller asserts). */
export async function tool(
  bin: string,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** A readable account of a tool run, for assertion messages. */
export function describeRun(what: string, result: ToolResult): string {
  return `${what} exited ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

const discovered = new Map<string, ApiResource[]>();

async function resources(apiVersion: string): Promise<ApiResource[]> {
  const cached = discovered.get(apiVersion);
  if (cached !== undefined) return cached;
  const { server, token } = testbed().kube;
  const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const res = await kubeRequest(server, token, { path });
  if (res.status !== 200) throw new Error(`discovery of ${apiVersion}: ${res.status} ${res.body}`);
  const list = (JSON.parse(res.body) as { resources: ApiResource[] }).resources.filter(
    (r) => !r.name.includes('/'),
  );
  discovered.set(apiVersion, list);
  return list;
}

/** The REST path of one object (its kind looked up through discovery). */
export async function objectPath(manifest: Manifest): Promise<string> {
  const resource = (await resources(manifest.apiVersion)).find((r) => r.kind === manifest.kind);
  if (resource === undefined) {
    throw new Error(`the API server does not serve ${manifest.kind} in ${manifest.apiVersion}`);
  }
  const base = manifest.apiVersion.includes('/')
    ? `/apis/${manifest.apiVersion}`
    : `/api/${manifest.apiVersion}`;
  const ns = manifest.metadata.namespace;
  if (resource.namespaced && (ns === undefined || ns === '')) {
    throw new Error(`${manifest.kind} ${manifest.metadata.name} is namespaced but has no metadata.namespace`);
  }
  const scope = resource.namespaced ? `/namespaces/${ns ?? ''}` : '';
  return `${base}${scope}/${resource.name}/${manifest.metadata.name}`;
}

/** Server-side apply; `dryRun` leaves nothing behind. Returns the API server's answer. */
export async function apply(
  manifest: Manifest,
  options: { dryRun: boolean },
): Promise<{ status: number; body: string }> {
  const { server, token } = testbed().kube;
  const query = `fieldManager=lc2-backup-ops-tests&force=true${options.dryRun ? '&dryRun=All' : ''}`;
  return kubeRequest(server, token, {
    method: 'PATCH',
    path: `${await objectPath(manifest)}?${query}`,
    headers: { 'content-type': 'application/apply-patch+yaml' },
    body: manifest,
  });
}

/** Deletes an object; an object already gone is fine. */
export async function remove(manifest: Manifest): Promise<void> {
  const { server, token } = testbed().kube;
  const res = await kubeRequest(server, token, { method: 'DELETE', path: await objectPath(manifest) });
  if (res.status >= 300 && res.status !== 404) {
    throw new Error(`deleting ${manifest.kind} ${manifest.metadata.name}: ${res.status} ${res.body}`);
  }
}

/**
 * Minimal monitoring.coreos.com CRDs (ServiceMonitor, PrometheusRule) for a cluster without the
 * Prometheus Operator: the kinds exist, their content is not validated
 * (x-kubernetes-preserve-unknown-fields).
 */
export function monitoringCrds(): Manifest[] {
  const crd = (kind: string, plural: string): Manifest => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.monitoring.coreos.com` },
    spec: {
      group: 'monitoring.coreos.com',
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            },
          },
        },
      ],
    },
  });
  return [crd('ServiceMonitor', 'servicemonitors'), crd('PrometheusRule', 'prometheusrules')];
}

/** Installs the minimal monitoring CRDs (idempotent) and waits until they are served. */
export async function installMonitoringCrds(): Promise<void> {
  const { server, token } = testbed().kube;
  for (const crd of monitoringCrds()) {
    const applied = await apply(crd, { dryRun: false });
    if (applied.status >= 300)
      throw new Error(`applying CRD ${crd.metadata.name}: ${applied.status} ${applied.body}`);
    const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`;
    for (let i = 0; ; i++) {
      const got = JSON.parse((await kubeRequest(server, token, { path })).body) as {
        status?: { conditions?: { type: string; status: string }[] };
      };
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 100) throw new Error(`CRD ${crd.metadata.name} not Established after 10 s`);
      await sleep(100);
    }
  }
  discovered.delete('monitoring.coreos.com/v1');
}
