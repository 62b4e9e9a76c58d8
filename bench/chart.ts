// The chart image of a bench run: one SVG (no dependencies, opens in any browser and renders on
// GitHub) with a group of bars per scenario — each tool's median wall time, the longest of the
// group full width, ours first and coloured — and ours/tool beside each peer, so who won and by
// how much reads at a glance. Written next to the JSON and Markdown by writeReport; for an older
// report: `node bench/chart.ts bench/results/<stamp>.json` writes `<stamp>.svg` beside it.
import { readFile, writeFile } from 'node:fs/promises';
import type { RunReport } from './report.ts';

const ours = 'lc2-backup';
const barHeight = 16;
const gap = 4;
const groupGap = 18;
const labelWidth = 150;
const barWidth = 480;
const width = labelWidth + barWidth + 180;

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The SVG chart of a run's median wall times per scenario and tool. */
export function svgChart(report: RunReport): string {
  const parts: string[] = [];
  let y = 48;
  for (const scenario of report.scenarios) {
    const tools = Object.keys(scenario.medians).sort((a, b) => (a === ours ? -1 : b === ours ? 1 : 0));
    const walls = tools.map((t) => scenario.medians[t]?.wallMs ?? 0);
    const longest = Math.max(1, ...walls);
    const mine = scenario.medians[ours]?.wallMs;
    parts.push(
      `<text x="8" y="${y}"><tspan font-weight="bold">${escape(scenario.id)}</tspan> <tspan fill="#555">${escape(scenario.title)}</tspan></text>`,
    );
    y += 8;
    tools.forEach((tool, i) => {
      const wall = walls[i] ?? 0;
      const top = y + i * (barHeight + gap);
      const length = Math.max(1, (wall / longest) * barWidth);
      const colour = tool === ours ? '#2b6cb0' : '#a0aec0';
      const ratio =
        tool === ours || mine === undefined || wall === 0
          ? ''
          : `  ours/${tool} ${(mine / wall).toFixed(2)}×`;
      parts.push(
        `<text x="${labelWidth - 6}" y="${top + 12}" text-anchor="end">${escape(tool)}</text>`,
        `<rect x="${labelWidth}" y="${top}" width="${length.toFixed(1)}" height="${barHeight}" fill="${colour}"/>`,
        `<text x="${(labelWidth + length + 4).toFixed(1)}" y="${top + 12}">${(wall / 1000).toFixed(2)} s${escape(ratio)}</text>`,
      );
    });
    y += tools.length * (barHeight + gap) + groupGap;
  }
  const title = `lc2-backup bench ${report.startedAt}: median wall time per tool (shorter is better), ${report.reps} run(s) each`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="22" font-size="14" font-weight="bold">${escape(title)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

if (import.meta.main) {
  const file = process.argv[2];
  if (file === undefined || !file.endsWith('.json')) {
    process.stderr.write(
      'usage: node bench/chart.ts bench/results/<stamp>.json  (writes <stamp>.svg beside it)\n',
    );
    process.exit(2);
  }
  const report = JSON.parse(await readFile(file, 'utf8')) as RunReport;
  const out = file.replace(/\.json$/, '.svg');
  await writeFile(out, svgChart(report));
  process.stdout.write(`${out}\n`);
}
