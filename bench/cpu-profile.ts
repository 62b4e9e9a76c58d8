// Where a process's main thread spent its time, from a V8 CPU profile (`node --cpu-prof`, or
// `node bench/controller-scale.ts --cpu-prof <dir>`): the functions with the most self time and
// the most total time (self + callees), optionally within a span of seconds from the profile's
// start (e.g. the burst of creates), and the share of each second the thread was busy.
//
//   node bench/cpu-profile.ts <file.cpuprofile | dir holding one> [--from 3] [--to 11] [--top 40]
//
// The profile samples the thread's stack about every millisecond; on a machine with more work
// than cores it also counts time the thread waited for a core inside a system call.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    from: { type: 'string', default: '0' },
    to: { type: 'string', default: 'Infinity' },
    top: { type: 'string', default: '40' },
    callers: { type: 'string' },
  },
});
const target = positionals[0];
if (target === undefined) {
  process.stderr.write(
    'usage: node bench/cpu-profile.ts <file.cpuprofile | dir> [--from s] [--to s] [--top n] [--callers <function name>]\n',
  );
  process.exit(2);
}

function profileFile(path: string): string {
  if (!statSync(path).isDirectory()) return path;
  const found = readdirSync(path).filter((f) => f.endsWith('.cpuprofile'));
  if (found.length !== 1) {
    throw new Error(`${path}: holds ${found.length} .cpuprofile files; name the one to read`);
  }
  return join(path, found[0] ?? '');
}

const profile = JSON.parse(readFileSync(profileFile(target), 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);

/** `name file:line`, the file shortened to its last two parts. */
function label(id: number): string {
  const { functionName, url, lineNumber } = byId.get(id)?.callFrame ?? {
    functionName: '?',
    url: '',
    lineNumber: 0,
  };
  return `${functionName === '' ? '(anonymous)' : functionName} ${url.split('/').slice(-2).join('/')}:${lineNumber}`;
}

const from = Number(values.from) * 1e6;
const to = Number(values.to) * 1e6;
const self = new Map<string, number>();
const total = new Map<string, number>();
/** With --callers: time in the named function (and its callees) by the chain of its callers. */
const callers = new Map<string, number>();
const perSecond = new Map<number, { busy: number; idle: number }>();
const add = (m: Map<string, number>, k: string, us: number): void => {
  m.set(k, (m.get(k) ?? 0) + us);
};
let t = 0;
let busy = 0;
profile.samples.forEach((id, i) => {
  t += profile.timeDeltas[i] ?? 0;
  const us = profile.timeDeltas[i + 1] ?? 0; // the time until the next sample
  const idle = byId.get(id)?.callFrame.functionName === '(idle)';
  const second = perSecond.get(Math.floor(t / 1e6)) ?? { busy: 0, idle: 0 };
  if (idle) second.idle += us;
  else second.busy += us;
  perSecond.set(Math.floor(t / 1e6), second);
  if (idle || t < from || t > to) return;
  busy += us;
  add(self, label(id), us);
  const seen = new Set<string>();
  const chain: string[] = [];
  for (let node: number | undefined = id; node !== undefined; node = parentOf.get(node)) {
    const name = label(node);
    if (!seen.has(name)) add(total, name, us);
    seen.add(name);
    chain.push(name);
  }
  const wanted = values.callers;
  if (wanted === undefined) return;
  const at = chain.findIndex((name) => name.startsWith(`${wanted} `));
  if (at >= 0) add(callers, chain.slice(at, at + 10).join(' ← '), us);
});

const top = Number(values.top);
const rows = (m: Map<string, number>): string =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => `${(us / 1e6).toFixed(2).padStart(7)} s  ${name}`)
    .join('\n');
const shares = [...perSecond]
  .map(([s, { busy: b, idle: i }]) => `${s}:${Math.round((100 * b) / Math.max(1, b + i))}%`)
  .join(' ');
process.stdout.write(`busy share by second from the start: ${shares}\n`);
process.stdout.write(`busy in the span: ${(busy / 1e6).toFixed(2)} s\n\nself time\n${rows(self)}\n`);
process.stdout.write(`\ntotal time (self + callees)\n${rows(total)}\n`);
if (values.callers !== undefined) {
  process.stdout.write(`\n${values.callers} (with its callees) by its nearest callers\n${rows(callers)}\n`);
}
