// The alert rules with Prometheus's own tool: `promtool check rules` accepts the rule file, and
// `promtool test rules` runs its unit tests (every alert firing and not firing). A deliberately
// wrong expectation must make promtool fail, so a broken rule cannot pass unnoticed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goBinary } from '../../env/peers.ts';
import { chartDir, describeRun, tool } from './support.ts';

const files = join(chartDir, 'files');
let promtool = '';
const scratch = mkdtempSync(join(tmpdir(), 'lc2-promtool-'));

interface RuleTests {
  rule_files: string[];
  tests: {
    name: string;
    alert_rule_test?: { eval_time: string; alertname: string; exp_alerts: unknown[] }[];
  }[];
}
interface RuleFile {
  groups: { rules: { alert?: string }[] }[];
}

beforeAll(async () => {
  promtool = await goBinary('promtool');
}, 30 * 60_000);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const alertNames = (): string[] =>
  (parseYaml(readFileSync(join(files, 'alerts.yaml'), 'utf8')) as RuleFile).groups
    .flatMap((g) => g.rules)
    .map((r) => r.alert ?? '')
    .filter((name) => name !== '');

describe('promtool', () => {
  it('checks the rule file', async () => {
    const result = await tool(promtool, ['check', 'rules', join(files, 'alerts.yaml')]);
    expect(result.code, describeRun('promtool check rules', result)).toBe(0);
    expect(result.stdout).toContain(`SUCCESS: ${alertNames().length} rules found`);
  });

  it('passes the unit tests of every alert', async () => {
    const result = await tool(promtool, ['test', 'rules', 'alerts.test.yaml'], { cwd: files });
    expect(result.code, describeRun('promtool test rules', result)).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
  });

  it('has, for every alert, a test where it fires and one where it does not', () => {
    const tests = (
      parseYaml(readFileSync(join(files, 'alerts.test.yaml'), 'utf8')) as RuleTests
    ).tests.flatMap((t) => t.alert_rule_test ?? []);
    expect(alertNames()).toEqual([
      'BackupFailed',
      'NoSuccessfulBackup26h',
      'QueueDepthHigh',
      'CatalogArchivalLagging',
      'ControllerDown',
    ]);
    for (const alert of alertNames()) {
      const mine = tests.filter((t) => t.alertname === alert);
      expect(
        mine.some((t) => t.exp_alerts.length > 0),
        `${alert} is never expected to fire`,
      ).toBe(true);
      expect(
        mine.some((t) => t.exp_alerts.length === 0),
        `${alert} is never expected to stay quiet`,
      ).toBe(true);
    }
  });

  it('fails when an expectation is wrong', async () => {
    const suite = parseYaml(readFileSync(join(files, 'alerts.test.yaml'), 'utf8')) as RuleTests;
    const quiet = suite.tests[0]?.alert_rule_test?.find((t) => t.eval_time === '40m');
    if (quiet === undefined) throw new Error('alerts.test.yaml: the BackupFailed test at 40m is gone');
    // BackupFailed fires at 10m; claim it is quiet then
    quiet.eval_time = '10m';
    quiet.exp_alerts = [];
    copyFileSync(join(files, 'alerts.yaml'), join(scratch, 'alerts.yaml'));
    writeFileSync(join(scratch, 'wrong.test.yaml'), stringify(suite));
    const result = await tool(promtool, ['test', 'rules', 'wrong.test.yaml'], { cwd: scratch });
    expect(result.code).not.toBe(0);
    expect(`${result.stdout}${result.stderr}`).toContain('alertname: BackupFailed');
  });
});
