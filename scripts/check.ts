// `npm run check`: type check, type-aware lint, formatting. Each step runs even when an earlier
// one failed, so one run shows every problem.
import { spawnSync } from 'node:child_process';

export const checks: [name: string, command: string, args: string[]][] = [
  ['type check', 'tsc', ['--noEmit', '-p', '.']],
  ['lint', 'eslint', ['--max-warnings=0', '.']],
  ['format', 'prettier', ['--check', '--log-level=warn', '.']],
];

export function runChecks(): boolean {
  const failed: string[] = [];
  for (const [name, command, args] of checks) {
    process.stderr.write(`check: ${name} (${command} ${args.join(' ')})\n`);
    const result = spawnSync(command, args, { stdio: 'inherit' });
    if (result.status !== 0) failed.push(name);
  }
  if (failed.length > 0) {
    process.stderr.write(
      `check failed: ${failed.join(', ')}. Fix the problems above (\`npx prettier --write .\` fixes formatting).\n`,
    );
    return false;
  }
  process.stderr.write('check: all passed\n');
  return true;
}

if (import.meta.main) process.exit(runChecks() ? 0 : 1);
