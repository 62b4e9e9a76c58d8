// The generated CRDs on the real API server: the seed example applies unchanged; bad values,
// unknown fields and cross-field mistakes are rejected with the field named; spec is
// immutable; `kubectl get` shows State, Project, Environment, Size, Duration and Age.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { kubeGet } from '../../env/testbed.ts';
import { installCrds, kubeConfig, statusMessage, testbed, useNamespace } from '../../env/fixtures.ts';

const ns = useNamespace('crds');
const kc = kubeConfig();
const group = 'backup.liferay.cloud';
const seedExample = parse(
  readFileSync(
    join(import.meta.dirname, '..', '..', '..', 'api', 'v1alpha1', 'testdata', 'seed-001-backuprequest.yaml'),
    'utf8',
  ),
) as { metadata: Record<string, unknown>; spec: Record<string, unknown> } & Record<string, unknown>;

const custom = (): CustomObjectsApi => kc.makeApiClient(CustomObjectsApi);

function backupRequest(name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...seedExample, metadata: { name }, spec: { ...seedExample.spec, ...spec } };
}

async function create(plural: string, body: Record<string, unknown>): Promise<unknown> {
  return custom().createNamespacedCustomObject({
    group,
    version: 'v1alpha1',
    namespace: ns.name,
    plural,
    body,
    fieldValidation: 'Strict',
  });
}

beforeAll(installCrds, 60_000);

/** The API server's message for a request that must be refused. */
async function refusal(request: Promise<unknown>): Promise<string> {
  try {
    await request;
  } catch (err) {
    return statusMessage(err);
  }
  throw new Error('the API server accepted what it should refuse');
}

describe('CRDs on the API server', () => {
  it('accepts the seed-001 example unchanged', async () => {
    const created = (await create('backuprequests', {
      ...seedExample,
      metadata: { ...seedExample.metadata, namespace: ns.name },
    })) as {
      spec: { database: { retention: string; type: string } };
    };
    expect(created.spec.database).toMatchObject({ type: 'snapshot', retention: '7d' });
  });

  it('fills the seed defaults when fields are omitted', async () => {
    const created = (await create(
      'backuprequests',
      backupRequest('defaults', {
        database: { instanceId: 'retail-prd-db' },
        documentLibrary: { sourceBucket: 'src-bucket', destinationBucket: 'dst-bucket' },
      }),
    )) as { spec: { database: Record<string, unknown>; documentLibrary: Record<string, unknown> } };
    expect(created.spec.database).toEqual({ instanceId: 'retail-prd-db', type: 'snapshot', retention: '7d' });
    expect(created.spec.documentLibrary.excludeGeneratedFiles).toBe(false);
  });

  it('rejects a bad retention, an unknown provider and an unknown field, naming each field', async () => {
    expect(
      await refusal(
        create(
          'backuprequests',
          backupRequest('bad-retention', { database: { instanceId: 'db', retention: '7 days' } }),
        ),
      ),
    ).toMatch(
      /spec\.database\.retention: Invalid value: "7 days": spec\.database\.retention in body should match '\^\\d\+\[dhm\]\$'/,
    );
    expect(
      await refusal(create('backuprequests', backupRequest('bad-provider', { provider: 'ibm' }))),
    ).toMatch(/spec\.provider: Unsupported value: "ibm": supported values: "aws", "gcp", "azure", "local"/);
    expect(await refusal(create('backuprequests', backupRequest('bad-field', { colour: 'blue' })))).toMatch(
      /unknown field "spec\.colour"/,
    );
  });

  it('enforces the cross-field rules with CEL, naming the field', async () => {
    expect(
      await refusal(
        create(
          'backuprequests',
          backupRequest('same-bucket', {
            documentLibrary: { sourceBucket: 'same-bucket', destinationBucket: 'same-bucket' },
          }),
        ),
      ),
    ).toMatch(
      /spec\.documentLibrary\.destinationBucket: Invalid value: .*destinationBucket must differ from sourceBucket/,
    );
    const restore = (source: Record<string, unknown>, mode = 'new') => ({
      apiVersion: `${group}/v1alpha1`,
      kind: 'RestoreRequest',
      metadata: { name: `r-${Object.keys(source).length}-${mode}` },
      spec: {
        projectId: 'retail',
        environment: 'prd',
        source,
        target: { mode, database: { instanceId: 'clone-db' }, documentLibrary: { bucket: 'clone-bucket' } },
      },
    });
    expect(
      await refusal(create('restorerequests', restore({ backupId: 'a', backupRequestName: 'b' }))),
    ).toMatch(/spec\.source: Invalid value: .*set exactly one of backupRequestName or backupId/);
    expect(await refusal(create('restorerequests', restore({ backupId: 'a' }, 'in-place')))).toMatch(
      /spec\.target\.mode: Invalid value: .*in-place restore is not supported yet/,
    );
    await expect(create('restorerequests', restore({ backupId: 'a' }))).resolves.toBeDefined();
  });

  it('keeps spec immutable', async () => {
    await create('backuprequests', backupRequest('immutable'));
    expect(
      await refusal(
        custom().patchNamespacedCustomObject({
          group,
          version: 'v1alpha1',
          namespace: ns.name,
          plural: 'backuprequests',
          name: 'immutable',
          body: [{ op: 'replace', path: '/spec/environment', value: 'dev' }],
        }),
      ),
    ).toMatch(/spec is immutable/);
  });

  it('shows State, Project, Environment, Size, Duration and Age in kubectl get', async () => {
    const { server, token } = testbed().kube;
    const table = await kubeGet(
      server,
      token,
      `/apis/${group}/v1alpha1/namespaces/${ns.name}/backuprequests`,
      {
        accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
      },
    );
    const columns = (
      JSON.parse(table.body) as { columnDefinitions: { name: string }[] }
    ).columnDefinitions.map((c) => c.name);
    expect(columns).toEqual(['Name', 'State', 'Project', 'Environment', 'Size', 'Duration', 'Age', 'Reason']);
  });
});
