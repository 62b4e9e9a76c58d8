// `npm test [-- vitest args]`: the checks, then the vitest projects (unit, integration, e2e).
// `npm test -- --project unit` runs one project.
import { spawnSync } from 'node:child_process';
import { runChecks } from './check.ts';

if (!runChecks()) process.exit(1);
const result = spawnSync('vitest', ['run', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
