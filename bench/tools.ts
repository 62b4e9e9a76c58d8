// The peers the benchmarks race against, located or installed the way the test bed gets its
// services: Go programs built into the user cache (test/env/peers.ts), Debian packages
// installed with apt-get when missing.
import { access, constants } from 'node:fs/promises';
import { withCacheLock, withProgress } from '../test/env/cache.ts';
import { run } from '../test/env/exec.ts';
import { goBinary, postgresTools } from '../test/env/peers.ts';

export interface Tools {
  s5cmd: string;
  warp: string;
  rclone: string;
  zstd: string;
  openssl: string;
  pgBin: string;
}

async function onPath(name: string): Promise<string | undefined> {
  for (const dir of ['/usr/bin', '/usr/local/bin', '/bin']) {
    const path = `${dir}/${name}`;
    const found = await access(path, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (found) return path;
  }
  return undefined;
}

/** A program from a Debian package, installed with apt-get when missing. */
async function debian(program: string, pkg: string): Promise<string> {
  const found = await onPath(program);
  if (found !== undefined) return found;
  return withCacheLock(`${pkg}-apt`, async () => {
    const again = await onPath(program);
    if (again !== undefined) return again;
    if (process.getuid?.() !== 0) {
      throw new Error(
        `bench: ${program} is not installed and this user cannot install it: run \`sudo apt-get install -y ${pkg}\``,
      );
    }
    return withProgress(`installing ${pkg} with apt-get`, '30 s', async () => {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const install = ['install', '-y', '--no-install-recommends', pkg];
      try {
        await run('apt-get', install, { env });
      } catch {
        await run('apt-get', ['update'], { env });
        await run('apt-get', install, { env });
      }
      const path = await onPath(program);
      if (path === undefined)
        throw new Error(`bench: apt-get installed ${pkg} but ${program} is not on the PATH`);
      return path;
    });
  });
}

/** Every peer, built or installed on first use (Go builds one after another: they share the cores). */
export async function locateTools(): Promise<Tools> {
  const s5cmd = await goBinary('s5cmd');
  const warp = await goBinary('warp');
  const [rclone, zstd, openssl, pgBin] = await Promise.all([
    debian('rclone', 'rclone'),
    debian('zstd', 'zstd'),
    debian('openssl', 'openssl'),
    postgresTools(),
  ]);
  return { s5cmd, warp, rclone, zstd, openssl, pgBin };
}
