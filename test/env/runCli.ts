// Runs the `lc2-backup` CLI as a user would, with a working directory holding its
// configuration (lc2-backup.yaml) and an embedded catalog.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cliIn(work: string): (...args: string[]) => CliResult {
  return (...args) => {
    const result = spawnSync(
      process.execPath,
      [
        'src/cli/main.ts',
        '--config',
        join(work, 'lc2-backup.yaml'),
        '--catalog',
        `pglite://${join(work, 'catalog')}`,
        ...args,
      ],
      { cwd: root, encoding: 'utf8', env: process.env },
    );
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  };
}
