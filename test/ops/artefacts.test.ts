// The operations artefacts agree with the code and with each other, without tools: the chart's
// CRDs are the generated ones; every metric the dashboard and the alerts query is one the
// controller exports (names read from the registry of src/observability/metrics.ts); the
// dashboard shows what the operations guide promises; every runbook link lands on a section of
// docs/operations.md.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createMetrics, metricNames } from '../../src/observability/metrics.ts';

const root = join(import.meta.dirname, '..', '..');
const chart = join(root, 'deploy', 'helm', 'lc2-backup');

/** Every series name the registry exposes (histograms with their _bucket/_sum/_count). */
async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const metric of await createMetrics().registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
    }
  }
  return names;
}

const keywords = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
]);

/** The metric names a PromQL expression (or a Grafana label_values query) reads. */
function metricsIn(expression: string): string[] {
  const e = expression
    .replace(/label_values\(([^,)]+)(,[^)]*)?\)/g, '$1')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names: string[] = [];
  for (const m of e.matchAll(/(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (name === undefined || call !== undefined || keywords.has(name.toLowerCase())) continue;
    names.push(name);
  }
  return names;
}

interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query?: unknown; definition?: string }[] };
}

const dashboard = (): Dashboard =>
  JSON.parse(readFileSync(join(chart, 'files', 'dashboard.json'), 'utf8')) as Dashboard;

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (): Rule[] =>
  (
    parseYaml(readFileSync(join(chart, 'files', 'alerts.yaml'), 'utf8')) as { groups: { rules: Rule[] }[] }
  ).groups.flatMap((g) => g.rules);

/** GitHub's anchor of a Markdown heading. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}

describe('metricsIn', () => {
  it('finds metric names and skips functions, labels, keywords, ranges and variables', () => {
    expect(
      metricsIn(
        'histogram_quantile(0.95, sum by (le, component) (rate(lc2_backup_duration_seconds_bucket{project=~"$project"}[$__rate_interval]))) / on(job) group_left up offset 1h',
      ),
    ).toEqual(['lc2_backup_duration_seconds_bucket', 'up']);
    expect(metricsIn('time() - max by (project) (x_seconds) > 26 * 3600 and bool y')).toEqual([
      'x_seconds',
      'y',
    ]);
    expect(metricsIn('label_values(lc2_backup_requests_total, project)')).toEqual([
      'lc2_backup_requests_total',
    ]);
  });
});

describe('the chart', () => {
  it('carries exactly the generated CRDs (deploy/crds)', () => {
    const generated = readdirSync(join(root, 'deploy', 'crds')).sort();
    expect(readdirSync(join(chart, 'crds')).sort()).toEqual(generated);
    for (const file of generated) {
      expect(
        readFileSync(join(chart, 'crds', file), 'utf8'),
        `deploy/helm/lc2-backup/crds/${file} differs from deploy/crds/${file}: run npm run generate`,
      ).toBe(readFileSync(join(root, 'deploy', 'crds', file), 'utf8'));
    }
  });
});

describe('the Grafana dashboard', () => {
  it('queries only exported metrics, from the chosen data source', async () => {
    const known = await exportedNames();
    const board = dashboard();
    expect(board).toMatchObject({ uid: 'lc2-backup', title: 'lc2-backup' });
    const panels = board.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
    const unknown: string[] = [];
    for (const panel of panels) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length ?? 0, `${panel.title} has no query`).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        const names = metricsIn(target.expr);
        expect(names.length, `${panel.title}: ${target.expr} reads no metric`).toBeGreaterThan(0);
        for (const name of names) if (!known.has(name)) unknown.push(`${panel.title}: ${name}`);
      }
    }
    for (const variable of board.templating.list) {
      for (const name of metricsIn(variable.definition ?? ''))
        if (!known.has(name)) unknown.push(`$${variable.name}: ${name}`);
    }
    expect(unknown).toEqual([]);
  });

  it('shows backups by state and project, duration, size, throughput, queue depth and failures by reason', () => {
    const read = new Set(
      dashboard()
        .panels.flatMap((p) => p.targets ?? [])
        .flatMap((t) => metricsIn(t.expr)),
    );
    for (const name of [
      metricNames.requests,
      `${metricNames.duration}_bucket`,
      metricNames.size,
      metricNames.bytesCopied,
      metricNames.queueDepth,
      metricNames.errors,
      metricNames.lastSuccess,
      metricNames.archivalLag,
      metricNames.leader,
    ]) {
      expect(read, `the dashboard does not show ${name}`).toContain(name);
    }
  });
});

describe('the alert rules', () => {
  it('query only exported metrics (and Prometheus’s own up)', async () => {
    const known = await exportedNames();
    known.add('up');
    const unknown = rules().flatMap((r) =>
      metricsIn(r.expr)
        .filter((n) => !known.has(n))
        .map((n) => `${r.alert}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });

  it('each carry a severity, a summary, a description and a runbook section that exists', () => {
    const docs = readFileSync(join(root, 'docs', 'operations.md'), 'utf8');
    const anchors = new Set([...docs.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1] ?? '')));
    for (const rule of rules()) {
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      const url = rule.annotations?.runbook_url ?? '';
      expect(url, rule.alert).toBe(`docs/operations.md#${rule.alert.toLowerCase()}`);
      expect(anchors, `docs/operations.md has no section for ${url}`).toContain(url.split('#')[1]);
    }
  });
});
