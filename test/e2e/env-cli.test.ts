// The developer's path to the test bed: `npm run env -- up` prints working settings and keeps
// the services running; `npm run env -- down` stops every process and removes the directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../env/exec.ts';

const root = join(import.meta.dirname, '..', '..');
const work = await mkdtemp(join(tmpdir(), 'lc2-env-cli-'));
const env = { ...process.env, LC2_ENV_STATE: join(work, 'state.json'), LC2_TESTBED: '' };
let up: ChildProcess | undefined;
afterAll(async () => {
  // a failed assertion must not leave the bed running
  if (up && up.exitCode === null && up.signalCode === null) {
    const gone = new Promise((resolve) => up?.on('exit', resolve));
    up.kill('SIGTERM');
    await gone;
  }
  await rm(work, { recursive: true, force: true });
});

function processesIn(dir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/cwd`).startsWith(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('npm run env', () => {
  it('starts services that answer with the printed settings, and `down` leaves nothing behind', async () => {
    const child = spawn(process.execPath, ['test/env/cli.ts', 'up', '--only', 'postgres,minio'], {
      cwd: root,
      env,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    up = child;
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 120_000;
    while (!out.includes('LC2_S3_ENDPOINT') && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(out, err).toContain('LC2_S3_ENDPOINT');
    const settings: Record<string, string> = Object.fromEntries(
      [...out.matchAll(/^export (\w+)='(.*)'$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    const dir = join(String(settings.LC2_TESTBED), '..');

    const client = new pg.Client({
      host: settings.PGHOST,
      port: Number(settings.PGPORT),
      user: settings.PGUSER,
      password: settings.PGPASSWORD,
      database: settings.PGDATABASE,
    });
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    await client.end();
    expect(rows[0]?.v).toMatch(/^15\./);
    const health = await fetch(`${String(settings.LC2_S3_ENDPOINT)}/minio/health/live`);
    expect(health.status).toBe(200);
    expect(processesIn(dir).length).toBeGreaterThanOrEqual(2);

    const status = await run(process.execPath, ['test/env/cli.ts', 'status'], { cwd: root, env });
    expect(status).toContain(String(settings.LC2_S3_ENDPOINT));

    const down = await run(process.execPath, ['test/env/cli.ts', 'down'], { cwd: root, env });
    expect(down).toContain('stopped the test bed');
    expect(await exited).toBe(0);
    expect(existsSync(dir)).toBe(false);
    expect(processesIn(dir)).toEqual([]);
  });
});
