// The user cache where peer binaries live between runs: outside the clone, because CI runs
// in a fresh clone and must find what an earlier run built.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export function cacheRoot(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'lc2-backup');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `work` while holding an exclusive lock named `name` in the cache, so that parallel
 * test runs never build the same peer twice. A lock left by a dead process is taken over.
 */
export async function withCacheLock<T>(name: string, work: () => Promise<T>): Promise<T> {
  const dir = join(cacheRoot(), 'locks', `${name}.lock`);
  await mkdir(join(cacheRoot(), 'locks'), { recursive: true });
  for (let waited = 0; ; waited++) {
    try {
      await mkdir(dir);
      await writeFile(join(dir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(await readFile(join(dir, 'pid'), 'utf8').catch(() => '0'));
      if (holder > 0 && !isAlive(holder)) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (waited % 60 === 0) {
        process.stderr.write(`test bed: waiting for another process (pid ${holder}) to finish ${name}…\n`);
      }
      await sleep(1000);
    }
  }
  try {
    return await work();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Prints a line now and then while slow first-run work goes on, so nobody thinks it hung. */
export async function withProgress<T>(what: string, estimate: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  process.stderr.write(`test bed: ${what} — first run only, about ${estimate}\n`);
  const timer = setInterval(() => {
    const s = Math.round((Date.now() - started) / 1000);
    process.stderr.write(
      `test bed: still ${what} (${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s)\n`,
    );
  }, 30_000);
  try {
    const result = await work();
    process.stderr.write(`test bed: done ${what} in ${Math.round((Date.now() - started) / 1000)} s\n`);
    return result;
  } finally {
    clearInterval(timer);
  }
}
