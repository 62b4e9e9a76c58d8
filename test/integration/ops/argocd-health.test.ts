// The Argo CD health checks (deploy/argocd/health/<group>/<kind>/health.lua) run with
// gopher-lua — the interpreter Argo CD embeds — under Argo CD's restrictions (base, table and
// package libraries only), against every case of each kind's health_test.yaml, the layout of
// Argo CD's resource_customizations. The sample objects are valid resources of their kind, and
// the argocd-cm snippet in docs/operations.md carries the same scripts.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupRequest, RestoreRequest, validate } from '../../../api/v1alpha1/index.ts';
import { goBinary } from '../../env/peers.ts';
import { describeRun, repoRoot, tool } from './support.ts';

const healthRoot = join(repoRoot, 'deploy', 'argocd', 'health');
const group = 'backup.liferay.cloud';
const kinds = { BackupRequest, RestoreRequest } as const;
let runner = '';
const scratch = mkdtempSync(join(tmpdir(), 'lc2-lua-'));

interface HealthTest {
  healthStatus: { status: string; message?: string };
  inputPath: string;
}

beforeAll(async () => {
  runner = await goBinary('argocd-lua-health');
}, 10 * 60_000);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

async function health(script: string, object: unknown): Promise<{ status: string; message?: string }> {
  const result = await tool(runner, [script], { input: JSON.stringify(object) });
  if (result.code !== 0) throw new Error(describeRun(`argocd-lua-health ${script}`, result));
  return JSON.parse(result.stdout) as { status: string; message?: string };
}

describe('Argo CD health checks', () => {
  it('exist for exactly the request kinds', () => {
    expect(readdirSync(join(healthRoot, group)).sort()).toEqual(Object.keys(kinds).sort());
  });

  for (const kind of Object.keys(kinds) as (keyof typeof kinds)[]) {
    it(`${kind}: every case of health_test.yaml, on valid sample objects`, async () => {
      const dir = join(healthRoot, group, kind);
      const { tests } = parseYaml(readFileSync(join(dir, 'health_test.yaml'), 'utf8')) as {
        tests: HealthTest[];
      };
      const inputs = tests.map((t) => t.inputPath).sort();
      expect(inputs).toEqual(
        readdirSync(join(dir, 'testdata'))
          .map((f) => `testdata/${f}`)
          .sort(),
      );
      const wrong: string[] = [];
      for (const test of tests) {
        const object = parseYaml(readFileSync(join(dir, test.inputPath), 'utf8')) as unknown;
        validate(kinds[kind], object, test.inputPath);
        const got = await health(join(dir, 'health.lua'), object);
        const want = { status: test.healthStatus.status, message: test.healthStatus.message };
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          wrong.push(`${test.inputPath}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
        }
      }
      expect(wrong).toEqual([]);
      expect(new Set(tests.map((t) => t.healthStatus.status))).toEqual(
        new Set(['Progressing', 'Healthy', 'Degraded']),
      );
    });
  }

  it('reports an unknown state as Unknown', async () => {
    const script = join(healthRoot, group, 'BackupRequest', 'health.lua');
    expect(await health(script, { status: { state: 'Archived' } })).toEqual({
      status: 'Unknown',
      message: 'Unknown state Archived',
    });
  });

  it("runs under Argo CD's restrictions: no string library", async () => {
    const script = join(scratch, 'uses-string.lua');
    writeFileSync(script, 'return { status = string.format("%s", "Healthy") }\n');
    const result = await tool(runner, [script], { input: '{}' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/string/);
  });

  it('are the scripts of the argocd-cm snippet in docs/operations.md', () => {
    const docs = readFileSync(join(repoRoot, 'docs', 'operations.md'), 'utf8');
    for (const kind of Object.keys(kinds)) {
      const key = `resource.customizations.health.${group}_${kind}: |`;
      const at = docs.indexOf(key);
      expect(at, `docs/operations.md has no ${key}`).toBeGreaterThan(-1);
      const lua = readFileSync(join(healthRoot, group, kind, 'health.lua'), 'utf8');
      const indented = lua
        .trimEnd()
        .split('\n')
        .map((line) => (line === '' ? '' : `    ${line}`))
        .join('\n');
      expect(docs.slice(at + key.length + 1)).toContain(indented);
    }
  });
});
