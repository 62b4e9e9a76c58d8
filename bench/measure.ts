// Measuring one run: wall time, and the client's CPU time (user + system). Ours runs in this
// process, so its CPU is this process's resourceUsage() delta plus the CPU of the children it
// waited for meanwhile (pg_dump, pg_restore: cutime + cstime in /proc/self/stat). A peer runs as
// a child, so its CPU (and that of everything it waited for, e.g. both ends of a shell pipeline)
// is the cutime + cstime delta alone. The servers' CPU (MinIO, PostgreSQL) is read from /proc too.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Linux's USER_HZ: /proc reports CPU time in 1/100 s. */
const TICK_MS = 10;

export interface Sample {
  wallMs: number;
  /** The client's CPU time (user + system) in ms. */
  cpuMs: number;
  /** The servers' CPU time in ms (MinIO and PostgreSQL processes of the bed). */
  serverCpuMs: number;
}

/** utime, stime, cutime, cstime of a process in ms, or zeros when it is gone. */
function procTimes(pid: number | 'self'): { self: number; children: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces: count fields after its closing parenthesis
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const at = (n: number): number => Number(fields[n - 3] ?? 0) * TICK_MS;
    return { self: at(14) + at(15), children: at(16) + at(17) };
  } catch {
    return { self: 0, children: 0 };
  }
}

function ownCpuMs(): number {
  const usage = process.resourceUsage();
  return (usage.userCPUTime + usage.systemCPUTime) / 1000;
}

function serverCpuMs(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => {
    const t = procTimes(pid);
    return sum + t.self + t.children;
  }, 0);
}

/** Runs `work` in this process and measures it. */
export async function measureInProcess(
  serverPids: readonly number[],
  work: () => Promise<void>,
): Promise<Sample> {
  const server0 = serverCpuMs(serverPids);
  const children0 = procTimes('self').children;
  const cpu0 = ownCpuMs();
  const t0 = performance.now();
  await work();
  const wallMs = performance.now() - t0;
  const cpuMs = ownCpuMs() - cpu0 + (procTimes('self').children - children0);
  return { wallMs, cpuMs, serverCpuMs: serverCpuMs(serverPids) - server0 };
}

export interface PeerCommand {
  command: string;
  args: string[];
  /** The whole environment of the peer: peers run with a clean one (see `cleanEnv`). */
  env: Record<string, string>;
  cwd?: string | undefined;
}

/** The environment peers get: no AWS_CA_BUNDLE or other settings of this shell leak in. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
    ...extra,
  };
}

/** Runs a peer to completion (its stdout is returned); fails with its output's tail. */
export function runPeer(cmd: PeerCommand): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd.command, cmd.args, {
      env: cmd.env,
      cwd: cmd.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-65536)));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-8192)));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd.command} ${cmd.args.join(' ')} exited with ${code}:\n${err || out}`));
    });
  });
}

/** Runs a peer and measures it; the peer's stdout goes to `onOutput`. */
export async function measurePeer(
  serverPids: readonly number[],
  cmd: PeerCommand,
  onOutput?: (stdout: string) => void,
): Promise<Sample> {
  const server0 = serverCpuMs(serverPids);
  const children0 = procTimes('self').children;
  const t0 = performance.now();
  const out = await runPeer(cmd);
  const wallMs = performance.now() - t0;
  onOutput?.(out);
  return {
    wallMs,
    cpuMs: procTimes('self').children - children0,
    serverCpuMs: serverCpuMs(serverPids) - server0,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
