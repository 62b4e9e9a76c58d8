// Kubernetes smoke test: the API server validates CRDs with CEL, serves watches, and the
// controller manager turns Jobs into Pods and CronJobs into Jobs.
import {
  ApiextensionsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Watch,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { kubeConfig, uniqueName, useNamespace } from '../../env/fixtures.ts';

const ns = useNamespace('smoke');
const kc = kubeConfig();
const group = `${uniqueName('g')}.smoke.lc2.test`;
const plural = 'widgets';

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

const crd: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.${group}` },
  spec: {
    group,
    scope: 'Namespaced',
    names: { plural, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                properties: { minCopies: { type: 'integer' }, maxCopies: { type: 'integer' } },
                x_kubernetes_validations: [
                  {
                    rule: 'self.minCopies <= self.maxCopies',
                    message: 'must not exceed maxCopies',
                    fieldPath: '.minCopies',
                  },
                ],
              },
            },
          },
        },
      },
    ],
  },
};

afterAll(async () => {
  await kc.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: `${plural}.${group}` });
});

describe('kubernetes', () => {
  it('applies a CRD whose CEL rule rejects a bad object naming the field, and watches its objects', async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({ body: crd });
    await eventually('the CRD to be Established', async () => {
      const got = await ext.readCustomResourceDefinition({ name: `${plural}.${group}` });
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') === true
        ? true
        : undefined;
    });

    const custom = kc.makeApiClient(CustomObjectsApi);
    const target = { group, version: 'v1', namespace: ns.name, plural };
    const widget = (name: string, minCopies: number) => ({
      apiVersion: `${group}/v1`,
      kind: 'Widget',
      metadata: { name },
      spec: { minCopies, maxCopies: 2 },
    });
    await expect(custom.createNamespacedCustomObject({ ...target, body: widget('bad', 5) })).rejects.toThrow(
      /spec\.minCopies: Invalid value.*must not exceed maxCopies/s,
    );

    const seen: string[] = [];
    const controller = await new Watch(kc).watch(
      `/apis/${group}/v1/namespaces/${ns.name}/${plural}`,
      {},
      (phase, obj: { metadata?: { name?: string } }) => seen.push(`${phase} ${obj.metadata?.name ?? ''}`),
      () => undefined,
    );
    try {
      await custom.createNamespacedCustomObject({ ...target, body: widget('good', 1) });
      await eventually('the ADDED watch event', () =>
        Promise.resolve(seen.includes('ADDED good') ? true : undefined),
      );
    } finally {
      controller.abort();
    }
  });

  it('runs the Job controller: a Job creates its Pod', async () => {
    const batch = kc.makeApiClient(BatchV1Api);
    await batch.createNamespacedJob({
      namespace: ns.name,
      body: {
        metadata: { name: 'smoke-job' },
        spec: {
          backoffLimit: 0,
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [{ name: 'main', image: 'lc2-backup:test', command: ['true'] }],
            },
          },
        },
      },
    });
    const core = kc.makeApiClient(CoreV1Api);
    const pod = await eventually('the Job to create a Pod', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: 'job-name=smoke-job' });
      return pods.items[0];
    });
    expect(pod.status?.phase).toBe('Pending');
  });

  it('runs the CronJob controller: a CronJob creates a Job', async () => {
    const batch = kc.makeApiClient(BatchV1Api);
    await batch.createNamespacedCronJob({
      namespace: ns.name,
      body: {
        metadata: { name: 'smoke-cron' },
        spec: {
          schedule: '* * * * *',
          jobTemplate: {
            spec: {
              template: {
                spec: {
                  restartPolicy: 'Never',
                  containers: [{ name: 'main', image: 'lc2-backup:test', command: ['true'] }],
                },
              },
            },
          },
        },
      },
    });
    // the schedule fires at the next minute boundary
    const job = await eventually(
      'the CronJob to create a Job',
      async () => {
        const jobs = await batch.listNamespacedJob({ namespace: ns.name });
        return jobs.items.find((j) =>
          j.metadata?.ownerReferences?.some((o) => o.kind === 'CronJob' && o.name === 'smoke-cron'),
        );
      },
      100_000,
    );
    expect(job.metadata?.name).toMatch(/^smoke-cron-\d+$/);
  });
});
