// The results of one bench run: a table of medians and ratios on stdout, and JSON + Markdown +
// an SVG chart (chart.ts) under bench/results/.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { svgChart } from './chart.ts';
import type { Sample } from './measure.ts';
import type { Medians, Verdict } from './scenarios.ts';

export interface ScenarioResult {
  id: string;
  title: string;
  goal: string;
  bytes: number;
  objects: number;
  samples: Record<string, Sample[]>;
  medians: Record<string, Medians>;
  verdicts: Verdict[];
  reference?: string | undefined;
}

export interface RunReport {
  startedAt: string;
  reps: number;
  dbMiB: number;
  machine: { cpus: string; cores: number; memoryGiB: number; node: string };
  versions: Record<string, string>;
  scenarios: ScenarioResult[];
}

const s = (ms: number): string => (ms / 1000).toFixed(2);

function row(r: ScenarioResult, tool: string, ours: Medians | undefined): string[] {
  const m = r.medians[tool];
  if (m === undefined) return [];
  const rate = r.bytes > 0 ? `${(r.bytes / 1e6 / (m.wallMs / 1000)).toFixed(0)} MB/s` : '';
  const perObject = r.objects > 1 ? `${(m.cpuMs / r.objects).toFixed(3)} ms/obj` : '';
  const wallRatio = ours === undefined ? '' : (ours.wallMs / m.wallMs).toFixed(2);
  const cpuRatio = ours === undefined || m.cpuMs === 0 ? '' : (ours.cpuMs / m.cpuMs).toFixed(2);
  return [
    r.id,
    tool,
    s(m.wallMs),
    rate,
    s(m.cpuMs),
    perObject,
    s(m.serverCpuMs),
    tool === 'lc2-backup' ? '1.00' : wallRatio,
    tool === 'lc2-backup' ? '1.00' : cpuRatio,
  ];
}

const header = [
  'scenario',
  'tool',
  'wall s',
  'rate',
  'client CPU s',
  'CPU/object',
  'server CPU s',
  'ours/tool wall',
  'ours/tool CPU',
];

export function tableRows(report: RunReport): string[][] {
  return report.scenarios.flatMap((r) =>
    Object.keys(r.medians)
      .map((tool) => row(r, tool, r.medians['lc2-backup']))
      .filter((x) => x.length > 0),
  );
}

function verdictWord(v: Verdict, met: string, notMet: string, info: string): string {
  if (v.info === true) return info;
  return v.met ? met : notMet;
}

export function textTable(report: RunReport): string {
  const rows = [header, ...tableRows(report)];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  const verdicts = report.scenarios.flatMap((r) =>
    r.verdicts
      .map((v) => `${r.id}: ${verdictWord(v, 'MET    ', 'NOT MET', 'info   ')} ${v.detail}`)
      .concat(r.reference === undefined ? [] : [`${r.id}: ${r.reference}`]),
  );
  return [line(header), ...rows.slice(1).map(line), '', ...verdicts].join('\n');
}

export function markdown(report: RunReport, chart?: string): string {
  const md = (r: string[]): string => `| ${r.join(' | ')} |`;
  const lines = [
    `# Benchmark run ${report.startedAt}`,
    '',
    ...(chart === undefined ? [] : [`![median wall time per scenario and tool](${chart})`, '']),
    `Machine: ${report.machine.cores} × ${report.machine.cpus}, ${report.machine.memoryGiB} GiB; Node ${report.machine.node}. ` +
      `Medians of ${report.reps} run(s) per tool, tools alternating. Database about ${report.dbMiB} MiB. ` +
      `Concurrency 16 for everyone. Client CPU = user + system of the client process(es); server CPU = MinIO + PostgreSQL.`,
    '',
    `Versions: ${Object.entries(report.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
    md(header),
    md(header.map(() => '---')),
    ...tableRows(report).map(md),
    '',
    '## Goals',
    '',
    ...report.scenarios.flatMap((r) => [
      `- **${r.id}** (${r.title}; goal: ${r.goal})`,
      ...r.verdicts.map((v) => `  - ${verdictWord(v, 'met', '**not met**', 'measured')}: ${v.detail}`),
      ...(r.reference === undefined ? [] : [`  - ${r.reference}`]),
    ]),
    '',
    '## Every sample (wall s / client CPU s / server CPU s)',
    '',
    ...report.scenarios.flatMap((r) =>
      Object.entries(r.samples).map(
        ([tool, samples]) =>
          `- ${r.id} ${tool}: ${samples.map((x) => `${s(x.wallMs)}/${s(x.cpuMs)}/${s(x.serverCpuMs)}`).join(', ')}`,
      ),
    ),
    '',
  ];
  return lines.join('\n');
}

export function machine(): RunReport['machine'] {
  return {
    cpus: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
}

/** Writes `<stamp>.json`, `<stamp>.md` and `<stamp>.svg` under bench/results/; returns their paths. */
export async function writeReport(dir: string, report: RunReport): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const json = join(dir, `${stamp}.json`);
  const mdFile = join(dir, `${stamp}.md`);
  const svg = join(dir, `${stamp}.svg`);
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(svg, svgChart(report));
  await writeFile(mdFile, markdown(report, `${stamp}.svg`));
  return [json, mdFile, svg];
}
