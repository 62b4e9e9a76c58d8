// `npm run env -- up|down|status`: the test bed by hand, for development.
//   up [--only postgres,minio,...]  start the services, print their settings, keep running
//   down                            stop the bed started by `up` and remove its directory
//   status                          print the settings of the running bed
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from './cache.ts';
import {
  serviceNames,
  sweepStaleTestbeds,
  Testbed,
  testbedEnv,
  type ServiceName,
  type PartialTestbedInfo,
} from './testbed.ts';

// LC2_ENV_STATE lets a test run its own bed beside a developer's.
const stateFile = process.env.LC2_ENV_STATE ?? join(tmpdir(), 'lc2-backup-env.json');

interface State {
  pid: number;
  info: PartialTestbedInfo;
}

function readState(): State | undefined {
  if (!existsSync(stateFile)) return undefined;
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
  return isAlive(state.pid) ? state : undefined;
}

function printSettings(info: PartialTestbedInfo): void {
  const lines = Object.entries(testbedEnv(info)).map(([k, v]) => `export ${k}='${v}'`);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stderr.write(
    `\ntest bed running in ${info.dir}` +
      (info.kube ? `\nkubeconfig: ${info.kube.kubeconfig}` : '') +
      `\nlogs: ${join(info.dir, 'logs')}\ntests started from a shell with these variables reuse this bed.` +
      `\nstop it with Ctrl-C or \`npm run env -- down\`.\n`,
  );
}

function parseOnly(args: string[]): readonly ServiceName[] {
  const i = args.indexOf('--only');
  if (i < 0) return serviceNames;
  const names = (args[i + 1] ?? '').split(',').filter((s) => s !== '');
  const bad = names.filter((n) => !(serviceNames as readonly string[]).includes(n));
  if (names.length === 0 || bad.length > 0) {
    throw new Error(`--only: unknown service "${bad.join(',')}"; choose from ${serviceNames.join(', ')}`);
  }
  return names as ServiceName[];
}

async function up(args: string[]): Promise<void> {
  const running = readState();
  if (running) {
    process.stderr.write(`a test bed is already running (pid ${running.pid}); its settings:\n`);
    printSettings(running.info);
    return;
  }
  const bed = await Testbed.create();
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('stopping the test bed…\n');
    await bed.stop();
    await rm(stateFile, { force: true });
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop());
  try {
    const info = await bed.up(parseOnly(args));
    await writeFile(stateFile, JSON.stringify({ pid: process.pid, info } satisfies State));
    printSettings(info);
  } catch (err) {
    await bed.stop();
    throw err;
  }
  // keep the services alive until a signal arrives
  setInterval(() => undefined, 1 << 30);
}

async function down(): Promise<void> {
  const state = readState();
  if (state) {
    process.kill(state.pid, 'SIGTERM');
    for (let i = 0; i < 300 && isAlive(state.pid); i++) await sleep(100);
  }
  sweepStaleTestbeds();
  await rm(stateFile, { force: true });
  process.stderr.write(state ? `stopped the test bed in ${state.info.dir}\n` : 'no test bed was running\n');
}

const [command = 'help', ...rest] = process.argv.slice(2);
try {
  if (command === 'up') await up(rest);
  else if (command === 'down') await down();
  else if (command === 'status') {
    const state = readState();
    if (state) printSettings(state.info);
    else process.stderr.write('no test bed is running; start one with `npm run env -- up`\n');
  } else {
    process.stderr.write(
      'usage: npm run env -- up [--only postgres,minio,kubernetes,moto,azurite,gcs] | down | status\n',
    );
    process.exitCode = command === 'help' ? 0 : 2;
  }
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
