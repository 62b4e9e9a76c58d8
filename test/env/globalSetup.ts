// Vitest global setup for the integration and e2e projects: one test bed per test run, shared
// by both projects (reference-counted), or the bed a developer started with `npm run env -- up`
// when LC2_TESTBED points at it. A service that cannot start fails the run: never a skip.
import { readFileSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { serviceNames, Testbed, type PartialTestbedInfo, type TestbedInfo } from './testbed.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    testbed: TestbedInfo;
  }
}

interface Shared {
  refs: number;
  started: Promise<{ info: TestbedInfo; bed?: Testbed }>;
}

const key = Symbol.for('lc2-backup.testbed');
const holder = globalThis as unknown as Record<symbol, Shared | undefined>;

function complete(info: PartialTestbedInfo, source: string): TestbedInfo {
  const keys = {
    postgres: 'postgres',
    minio: 's3',
    kubernetes: 'kube',
    moto: 'rds',
    azurite: 'azure',
    gcs: 'gcs',
  } as const;
  const missing = serviceNames.filter((s) => info[keys[s]] === undefined);
  if (missing.length > 0) {
    throw new Error(
      `test bed from ${source} lacks ${missing.join(', ')}: the suites need every service; start it with \`npm run env -- up\` (no --only).`,
    );
  }
  return info as TestbedInfo;
}

async function start(): Promise<{ info: TestbedInfo; bed?: Testbed }> {
  const external = process.env.LC2_TESTBED;
  if (external !== undefined && external !== '') {
    return { info: complete(JSON.parse(readFileSync(external, 'utf8')) as PartialTestbedInfo, external) };
  }
  const bed = await Testbed.create();
  try {
    return { info: complete(await bed.up(), 'this run'), bed };
  } catch (err) {
    await bed.stop();
    throw err;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const shared = (holder[key] ??= { refs: 0, started: start() });
  shared.refs++;
  const { info } = await shared.started;
  project.provide('testbed', info);
  return async () => {
    shared.refs--;
    if (shared.refs > 0) return;
    holder[key] = undefined;
    await (await shared.started).bed?.stop();
  };
}
