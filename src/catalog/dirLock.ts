// PGlite keeps no postmaster.pid: two processes (or two instances in one process) can open the
// same data directory and silently corrupt it. This lock file makes the second opener fail
// with a message instead.
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CatalogUnavailableError } from './errors.ts';

export const lockFileName = 'lc2-catalog.lock';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function holder(file: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(file, 'utf8')).trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

// A lock without a pid yet may be one another process has just created and not yet written.
async function isFresh(file: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(file)).mtimeMs < 5_000;
  } catch {
    return false;
  }
}

async function tryCreate(file: string): Promise<boolean> {
  try {
    const handle = await open(file, 'wx');
    try {
      await handle.writeFile(`${process.pid}\n`);
    } finally {
      await handle.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Takes the lock of a PGlite data directory (which must exist); resolves to the function that
 * releases it. A lock left by a process that no longer runs is taken over.
 */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, lockFileName);
  const release = async (): Promise<void> => {
    await unlink(file).catch(() => undefined);
  };
  // two rounds: the second after removing a stale lock
  for (let round = 0; round < 2; round++) {
    if (await tryCreate(file)) return release;
    const pid = await holder(file);
    if (pid === undefined ? await isFresh(file) : isAlive(pid)) {
      const who =
        pid === undefined
          ? 'another process'
          : pid === process.pid
            ? 'this process (it is already open here)'
            : `process ${pid}`;
      throw new CatalogUnavailableError(
        `the catalog in ${dir} is in use by ${who}: an embedded catalog serves one process at a time. ` +
          `Close the other user, or share a PostgreSQL catalog (a postgresql:// URL) instead. ` +
          `If no such process runs, delete ${file}.`,
        'ELOCKED',
      );
    }
    await unlink(file).catch(() => undefined);
  }
  throw new CatalogUnavailableError(
    `cannot take the lock ${file} of the catalog in ${dir}: another process keeps re-creating it`,
    'ELOCKED',
  );
}
