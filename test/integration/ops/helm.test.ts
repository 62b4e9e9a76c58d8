// The Helm chart with the real tools: `helm lint --strict` passes; `helm template` renders
// what the docs promise (2 replicas with leader election, probes, a locked-down pod, workload
// identity annotations, the configuration with the worker Jobs' settings filled in, least-privilege
// RBAC, monitoring objects); the test bed's API server accepts every rendered object by
// server-side dry-run apply (CRDs installed first; ServiceMonitor/PrometheusRule through minimal
// monitoring.coreos.com CRDs); and the RBAC, applied for real, grants the controller and the
// workers what they need and nothing more: the controller touches Jobs, CronJobs, Pods and Leases
// only in the release namespace, the workers only read requests and write their status.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/config.ts';
import { installCrds, testbed, useNamespace } from '../../env/fixtures.ts';
import { goBinary, versions } from '../../env/peers.ts';
import { kubeRequest } from '../../env/testbed.ts';
import {
  apply,
  chartDir,
  describeRun,
  installMonitoringCrds,
  remove,
  repoRoot,
  tool,
  type Manifest,
} from './support.ts';

const ns = useNamespace('helm');
const release = `ops-${randomBytes(3).toString('hex')}`;
const fullname = `${release}-lc2-backup`;
const helmHome = mkdtempSync(join(tmpdir(), 'lc2-helm-'));
const helmEnv = {
  ...process.env,
  HELM_CACHE_HOME: join(helmHome, 'cache'),
  HELM_CONFIG_HOME: join(helmHome, 'config'),
  HELM_DATA_HOME: join(helmHome, 'data'),
};
let helm = '';

const fullValues = [
  '--set=serviceMonitor.enabled=true',
  '--set=prometheusRule.enabled=true',
  '--set=prometheusRule.runbookBaseUrl=https://docs.example.test/lc2-backup/',
  '--set-string=serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/lc2-backup',
  '--set-string=serviceAccount.annotations.azure\\.workload\\.identity/client-id=00000000-0000-0000-0000-000000000001',
  '--set-string=podLabels.azure\\.workload\\.identity/use=true',
  '--set=tracing.endpoint=http://otel-collector.observability:4318',
];

async function template(extra: string[] = []): Promise<Manifest[]> {
  const args = ['template', release, chartDir, '--namespace', ns.name, '--include-crds'];
  // `helm template` renders offline; tell it the test bed's Kubernetes version
  const result = await tool(helm, [...args, `--kube-version=${versions.kubernetes}`, ...extra], {
    env: helmEnv,
  });
  if (result.code !== 0) throw new Error(describeRun('helm template', result));
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
}

function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (found === undefined) {
    throw new Error(
      `no ${kind} ${name} in: ${manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ')}`,
    );
  }
  return found;
}

function configData(configMap: Manifest, key: string): string {
  const value = (configMap.data as Record<string, unknown> | undefined)?.[key];
  if (typeof value !== 'string') throw new Error(`ConfigMap ${configMap.metadata.name} has no data.${key}`);
  return value;
}

beforeAll(async () => {
  helm = await goBinary('helm');
  await installCrds();
  await installMonitoringCrds();
}, 20 * 60_000);

afterAll(() => {
  rmSync(helmHome, { recursive: true, force: true });
});

describe('helm lint', () => {
  it('passes --strict with the default values and with everything turned on', async () => {
    for (const extra of [[], fullValues]) {
      const result = await tool(helm, ['lint', '--strict', chartDir, ...extra], { env: helmEnv });
      expect(result.code, describeRun('helm lint', result)).toBe(0);
      expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    }
  });
});

describe('helm template', () => {
  it('renders the controller: 2 replicas, leader election, probes, a locked-down pod, workload identity', async () => {
    const manifests = await template(fullValues);
    const deployment = find(manifests, 'Deployment', fullname);
    const selector = { 'app.kubernetes.io/instance': release, 'app.kubernetes.io/component': 'controller' };
    expect(deployment).toMatchObject({
      spec: {
        replicas: 2,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: { 'azure.workload.identity/use': 'true' } },
          spec: {
            serviceAccountName: fullname,
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            volumes: expect.arrayContaining([{ name: 'tmp', emptyDir: { sizeLimit: '2Gi' } }]) as unknown,
            containers: [
              {
                args: ['controller', '--leader-elect'],
                env: expect.arrayContaining([
                  { name: 'LC2_CONFIG', value: '/etc/lc2-backup/config.yaml' },
                  { name: 'NODE_OPTIONS', value: '--max-old-space-size=512 --max-semi-space-size=4' },
                  { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://otel-collector.observability:4318' },
                ]) as unknown,
                ports: [{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }],
                livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' } },
                readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' } },
                resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
                securityContext: {
                  runAsNonRoot: true,
                  readOnlyRootFilesystem: true,
                  allowPrivilegeEscalation: false,
                  capabilities: { drop: ['ALL'] },
                  seccompProfile: { type: 'RuntimeDefault' },
                },
                volumeMounts: expect.arrayContaining([{ name: 'tmp', mountPath: '/tmp' }]) as unknown,
              },
            ],
          },
        },
      },
    });
    expect(find(manifests, 'ServiceAccount', fullname).metadata).toMatchObject({
      annotations: {
        'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/lc2-backup',
        'azure.workload.identity/client-id': '00000000-0000-0000-0000-000000000001',
      },
    });
    find(manifests, 'ServiceAccount', `${fullname}-worker`);
    expect(find(manifests, 'Service', fullname)).toMatchObject({
      spec: {
        selector,
        ports: [{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }],
      },
    });
    expect(find(manifests, 'ServiceMonitor', fullname)).toMatchObject({
      spec: {
        selector: { matchLabels: selector },
        endpoints: [{ port: 'metrics', path: '/metrics', interval: '30s' }],
      },
    });
  });

  it('writes a configuration the controller accepts, with the chart-known settings filled in', async () => {
    const manifests = await template([
      '--set=config.projects.retail.provider=local',
      '--set=config.projects.retail.databases.retail-db.host=db.retail',
      '--set=config.projects.retail.databases.retail-db.database=retail',
      '--set=config.projects.retail.databases.retail-db.user=backup',
      '--set=config.projects.retail.databases.retail-db.password.env=RETAIL_DB_PASSWORD',
    ]);
    const text = configData(find(manifests, 'ConfigMap', `${fullname}-config`), 'config.yaml');
    const config = parseConfig(parseYaml(text), 'chart ConfigMap');
    expect(config.controller).toEqual({
      projectConcurrency: 2,
      globalConcurrency: 10,
      namespace: ns.name,
      executor: 'inProcess',
      job: {
        image: 'lc2-backup:0.1.0',
        serviceAccountName: `${fullname}-worker`,
        configMap: `${fullname}-config`,
        cpu: '500m',
        memory: '512Mi',
        deadline: '6h',
        backoffLimit: 1,
        podLabels: {},
      },
      finishedTTL: '24h',
    });
    expect(config.projects.retail?.databases['retail-db']?.password).toEqual({ env: 'RETAIL_DB_PASSWORD' });
    expect(config.engine.scratchDir).toBe('/tmp');
    // the worker Jobs mount this ConfigMap at /etc/lc2-backup and read config.yaml, like the controller
    const deployment = JSON.stringify(find(manifests, 'Deployment', fullname));
    expect(deployment).toContain(`"configMap":{"name":"${fullname}-config"}`);
    expect(deployment).toContain('"mountPath":"/etc/lc2-backup"');
  });

  it('gives the worker Jobs their Secret, pull secrets and settings, and keeps them in the release namespace', async () => {
    const jobSettings = async (extra: string[]): Promise<Record<string, unknown>> => {
      const manifests = await template(extra);
      const text = configData(find(manifests, 'ConfigMap', `${fullname}-config`), 'config.yaml');
      const { controller } = parseConfig(parseYaml(text), 'chart ConfigMap');
      expect(controller.namespace).toBe(ns.name);
      return { executor: controller.executor, ...controller.job };
    };
    expect(
      await jobSettings([
        '--set=worker.secretName=lc2-backup-secrets',
        '--set=config.controller.executor=job',
        '--set=config.controller.job.memory=2Gi',
        '--set=config.controller.job.deadline=12h',
      ]),
    ).toMatchObject({
      executor: 'job',
      secretName: 'lc2-backup-secrets',
      serviceAccountName: `${fullname}-worker`,
      configMap: `${fullname}-config`,
      memory: '2Gi',
      deadline: '12h',
      cpu: '500m',
    });
    // without worker.secretName the workers get no Secret; an explicit job.secretName wins
    expect(await jobSettings([])).not.toHaveProperty('secretName');
    expect(
      await jobSettings([
        '--set=worker.secretName=lc2-backup-secrets',
        '--set=config.controller.job.secretName=mine',
        `--set=config.controller.namespace=${ns.name}`,
      ]),
    ).toMatchObject({ secretName: 'mine' });

    const manifests = await template(['--set=imagePullSecrets[0].name=registry']);
    expect(find(manifests, 'ServiceAccount', `${fullname}-worker`)).toMatchObject({
      imagePullSecrets: [{ name: 'registry' }],
    });
    expect(find(manifests, 'ServiceAccount', fullname)).not.toHaveProperty('imagePullSecrets');

    // Jobs, CronJobs and Leases live where the chart grants them: another namespace is refused
    const args = ['template', release, chartDir, '--namespace', ns.name];
    const refused = await tool(
      helm,
      [...args, `--kube-version=${versions.kubernetes}`, '--set=config.controller.namespace=elsewhere'],
      { env: helmEnv },
    );
    expect(refused.code, describeRun('helm template', refused)).not.toBe(0);
    expect(refused.stderr).toContain(
      `config.controller.namespace is "elsewhere", but it must be the release namespace "${ns.name}"`,
    );
  });

  it('carries the alert rules, the dashboard and the CRDs unchanged', async () => {
    const manifests = await template(fullValues);
    const rule = find(manifests, 'PrometheusRule', fullname) as Manifest & { spec: unknown };
    const alerts = parseYaml(readFileSync(join(chartDir, 'files', 'alerts.yaml'), 'utf8')) as {
      groups: { rules: { annotations: Record<string, string> }[] }[];
    };
    for (const r of alerts.groups.flatMap((g) => g.rules)) {
      r.annotations.runbook_url = `https://docs.example.test/lc2-backup/${r.annotations.runbook_url ?? ''}`;
    }
    expect(rule.spec).toEqual(alerts);
    const dashboard = find(manifests, 'ConfigMap', `${fullname}-dashboard`);
    expect(dashboard.metadata.labels?.grafana_dashboard).toBe('1');
    expect(JSON.parse(configData(dashboard, 'lc2-backup.json'))).toEqual(
      JSON.parse(readFileSync(join(chartDir, 'files', 'dashboard.json'), 'utf8')),
    );
    const crds = manifests.filter((m) => m.kind === 'CustomResourceDefinition');
    const expected = readdirSync(join(repoRoot, 'deploy', 'crds')).map(
      (f) => parseYaml(readFileSync(join(repoRoot, 'deploy', 'crds', f), 'utf8')) as Manifest,
    );
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(expected.map((c) => c.metadata.name).sort());
    for (const crd of expected)
      expect(find(crds, 'CustomResourceDefinition', crd.metadata.name)).toEqual(crd);
  });

  it('is accepted object by object by the API server (server-side apply, dryRun=All)', async () => {
    for (const extra of [[], fullValues]) {
      const manifests = await template(extra);
      const refused: string[] = [];
      for (const manifest of manifests) {
        const answer = await apply(manifest, { dryRun: true });
        if (answer.status >= 300)
          refused.push(`${manifest.kind}/${manifest.metadata.name}: ${answer.status} ${answer.body}`);
      }
      expect(refused).toEqual([]);
      expect(manifests.length).toBeGreaterThanOrEqual(extra.length === 0 ? 14 : 16);
    }
  });

  it('would be refused by that dry run when a rendered object is invalid', async () => {
    const manifests = await template(['--set=replicaCount=-1', '--set=podDisruptionBudget.enabled=false']);
    const answer = await apply(find(manifests, 'Deployment', fullname), { dryRun: true });
    expect(answer.status).toBe(422);
    expect(answer.body).toContain('spec.replicas');
  });
});

describe('RBAC on the API server', () => {
  const applied: Manifest[] = [];

  afterAll(async () => {
    for (const manifest of applied.reverse()) await remove(manifest);
  });

  async function allowed(
    serviceAccount: string,
    attributes: { verb: string; resource: string; group?: string; subresource?: string; namespace?: string },
  ): Promise<boolean> {
    const { server, token } = testbed().kube;
    const res = await kubeRequest(server, token, {
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: `system:serviceaccount:${ns.name}:${serviceAccount}`,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${ns.name}`, 'system:authenticated'],
          resourceAttributes: { group: '', namespace: 'proj-retail-prd', ...attributes },
        },
      },
    });
    if (res.status >= 300) throw new Error(`SubjectAccessReview: ${res.status} ${res.body}`);
    return (JSON.parse(res.body) as { status: { allowed: boolean } }).status.allowed;
  }

  it('lets the controller and the workers do their work and nothing else', async () => {
    const manifests = await template();
    const rbac = manifests.filter((m) =>
      ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(m.kind),
    );
    expect(rbac).toHaveLength(8);
    for (const manifest of rbac) {
      const answer = await apply(manifest, { dryRun: false });
      expect(answer.status, answer.body).toBeLessThan(300);
      applied.push(manifest);
    }
    const group = 'backup.liferay.cloud';
    const worker = `${fullname}-worker`;
    // the default namespace of `allowed` is a tenant's (proj-retail-prd); `own` is the release's
    const own = ns.name;
    const cluster = '';
    const expectations: [string, Parameters<typeof allowed>[1], boolean][] = [
      // the controller: its kinds, their status and finalizers, Events, cluster-wide
      [fullname, { verb: 'watch', group, resource: 'backuprequests' }, true],
      [fullname, { verb: 'list', group, resource: 'restorerequests', namespace: cluster }, true],
      [fullname, { verb: 'watch', group, resource: 'backupschedules', namespace: cluster }, true],
      [fullname, { verb: 'delete', group, resource: 'backuprequests' }, true],
      [fullname, { verb: 'patch', group, resource: 'backuprequests', subresource: 'status' }, true],
      [fullname, { verb: 'patch', group, resource: 'backupschedules', subresource: 'status' }, true],
      [fullname, { verb: 'update', group, resource: 'restorerequests', subresource: 'finalizers' }, true],
      [fullname, { verb: 'update', group, resource: 'backupschedules', subresource: 'finalizers' }, true],
      [fullname, { verb: 'create', resource: 'events' }, true],
      [fullname, { verb: 'patch', group: 'events.k8s.io', resource: 'events' }, true],
      // ... Jobs, CronJobs, their Pods and logs, and Leases only in the release namespace
      [fullname, { verb: 'create', group: 'batch', resource: 'jobs', namespace: own }, true],
      [fullname, { verb: 'get', group: 'batch', resource: 'jobs', namespace: own }, true],
      [fullname, { verb: 'watch', group: 'batch', resource: 'jobs', namespace: own }, true],
      [fullname, { verb: 'create', group: 'batch', resource: 'cronjobs', namespace: own }, true],
      [fullname, { verb: 'update', group: 'batch', resource: 'cronjobs', namespace: own }, true],
      [fullname, { verb: 'delete', group: 'batch', resource: 'cronjobs', namespace: own }, true],
      [fullname, { verb: 'list', resource: 'pods', namespace: own }, true],
      [fullname, { verb: 'get', resource: 'pods', subresource: 'log', namespace: own }, true],
      [fullname, { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: own }, true],
      [fullname, { verb: 'create', group, resource: 'backuprequests' }, false],
      [fullname, { verb: 'create', group, resource: 'backupschedules' }, false],
      [fullname, { verb: 'create', group: 'batch', resource: 'jobs' }, false],
      [fullname, { verb: 'create', group: 'batch', resource: 'jobs', namespace: cluster }, false],
      [fullname, { verb: 'list', group: 'batch', resource: 'jobs', namespace: cluster }, false],
      [fullname, { verb: 'create', group: 'batch', resource: 'cronjobs' }, false],
      [fullname, { verb: 'delete', group: 'batch', resource: 'cronjobs' }, false],
      [fullname, { verb: 'list', resource: 'pods' }, false],
      [fullname, { verb: 'get', resource: 'pods', subresource: 'log' }, false],
      [fullname, { verb: 'update', group: 'coordination.k8s.io', resource: 'leases' }, false],
      [fullname, { verb: 'update', group: 'batch', resource: 'jobs', namespace: own }, false],
      [fullname, { verb: 'delete', group: 'batch', resource: 'jobs', namespace: own }, false],
      [fullname, { verb: 'create', resource: 'pods', namespace: own }, false],
      [fullname, { verb: 'get', resource: 'secrets', namespace: own }, false],
      [fullname, { verb: 'get', resource: 'secrets' }, false],
      [fullname, { verb: 'create', group: 'apps', resource: 'deployments', namespace: own }, false],
      // the workers: fire-schedule (read the schedule, create and read requests) ...
      [worker, { verb: 'get', group, resource: 'backupschedules' }, true],
      [worker, { verb: 'create', group, resource: 'backuprequests' }, true],
      [worker, { verb: 'get', group, resource: 'backuprequests' }, true],
      // ... and backup|restore (read the request, write its status, record Events)
      [worker, { verb: 'get', group, resource: 'restorerequests' }, true],
      [worker, { verb: 'get', group, resource: 'backuprequests', subresource: 'status' }, true],
      [worker, { verb: 'patch', group, resource: 'backuprequests', subresource: 'status' }, true],
      [worker, { verb: 'update', group, resource: 'restorerequests', subresource: 'status' }, true],
      [worker, { verb: 'create', resource: 'events' }, true],
      [worker, { verb: 'patch', resource: 'events' }, true],
      [worker, { verb: 'list', group, resource: 'backuprequests' }, false],
      [worker, { verb: 'watch', group, resource: 'backuprequests', namespace: cluster }, false],
      [worker, { verb: 'update', group, resource: 'backuprequests' }, false],
      [worker, { verb: 'patch', group, resource: 'restorerequests' }, false],
      [worker, { verb: 'delete', group, resource: 'backuprequests' }, false],
      [worker, { verb: 'create', group, resource: 'restorerequests' }, false],
      [worker, { verb: 'update', group, resource: 'backupschedules' }, false],
      [worker, { verb: 'patch', group, resource: 'backupschedules', subresource: 'status' }, false],
      [worker, { verb: 'update', group, resource: 'backuprequests', subresource: 'finalizers' }, false],
      [worker, { verb: 'create', group: 'batch', resource: 'jobs', namespace: own }, false],
      [worker, { verb: 'create', group: 'batch', resource: 'jobs' }, false],
      [worker, { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: own }, false],
      [worker, { verb: 'get', resource: 'secrets', namespace: own }, false],
      [worker, { verb: 'get', resource: 'secrets' }, false],
    ];
    const wrong: string[] = [];
    for (const [serviceAccount, attributes, expected] of expectations) {
      if ((await allowed(serviceAccount, attributes)) !== expected) {
        wrong.push(
          `${serviceAccount} ${JSON.stringify(attributes)}: expected ${expected ? 'allowed' : 'denied'}`,
        );
      }
    }
    expect(wrong).toEqual([]);
  });
});
