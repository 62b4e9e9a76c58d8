// Long-running service processes of the test bed: started with their output in a log file,
// waited for until a readiness probe passes, and stopped (TERM, then KILL) at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ServiceProcess {
  name: string;
  pid: number;
  logFile: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

export interface StartOptions {
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  options: StartOptions,
): ServiceProcess {
  const logFile = join(options.logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', fd, fd],
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid } : {}),
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      resolve(code);
    });
    child.on('error', () => {
      resolve(-1);
    });
  });
  if (child.pid === undefined)
    throw new Error(`test bed: could not start ${name} (${command}): not found or not executable`);
  return { name, pid: child.pid, logFile, child, exited };
}

export function logTail(proc: ServiceProcess, lines = 20): string {
  try {
    return readFileSync(proc.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls `ready` until it says yes; fails early, with the log tail, if the process dies. */
export async function waitReady(
  proc: ServiceProcess,
  ready: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const state = { dead: false };
  void proc.exited.then(() => (state.dead = true));
  let lastError = '';
  while (Date.now() < deadline) {
    if (state.dead) {
      throw new Error(
        `test bed: ${proc.name} exited during start-up. Last lines of ${proc.logFile}:\n${logTail(proc)}`,
      );
    }
    try {
      if (await ready()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await sleep(150);
  }
  throw new Error(
    `test bed: ${proc.name} was not ready after ${timeoutMs / 1000} s (${lastError}). Last lines of ${proc.logFile}:\n${logTail(proc)}`,
  );
}

export async function stopProcess(proc: ServiceProcess, graceMs = 10_000): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const done = await Promise.race([proc.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}
