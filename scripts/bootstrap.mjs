#!/usr/bin/env node
// Runs on whatever Node the machine has (Node 20 here), with no dependencies: it makes sure
// node_modules matches package-lock.json (npm ci when the lockfile changed, a quick no-op
// otherwise), then runs the given TypeScript entry point on the repo's own Node 24.
//
//   node scripts/bootstrap.mjs <entry.ts> [args...]
import { createHash } from 'node:crypto';
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lockfile = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.lc2-lockfile-sha256');
const localNode = join(root, 'node_modules', '.bin', 'node');

function lockHash() {
  const hash = createHash('sha256').update(readFileSync(lockfile));
  hash.update(readFileSync(join(root, 'package.json')));
  return hash.digest('hex');
}

function ensureDependencies() {
  const want = lockHash();
  const have = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
  if (have === want && existsSync(localNode)) return;
  process.stderr.write(
    have === ''
      ? 'lc2-backup: installing dependencies (npm ci, first run only)…\n'
      : 'lc2-backup: package-lock.json changed, reinstalling dependencies (npm ci)…\n',
  );
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(
      'lc2-backup: `npm ci` failed (see above). Check the network access to the npm registry, then run the command again.\n',
    );
    process.exit(result.status ?? 1);
  }
  if (!existsSync(localNode)) {
    process.stderr.write(
      'lc2-backup: npm ci finished but node_modules/.bin/node (the Node 24 the repo brings) is missing.\n' +
        'The `node` package needs its install script: check `allowScripts` in package.json.\n',
    );
    process.exit(1);
  }
  writeFileSync(stamp, `${want}\n`);
}

ensureDependencies();

const [entry, ...args] = process.argv.slice(2);
if (entry === undefined) process.exit(0);

// The repo's Node 24 runs the entry point, and node_modules/.bin goes first on the PATH so
// every tool the entry point starts (vitest, tsc, node itself) is the pinned one.
const env = { ...process.env, PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` };
const child = spawn(localNode, [join(root, entry), ...args], { cwd: process.cwd(), env, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else process.exit(code ?? 1);
});
