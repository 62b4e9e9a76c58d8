// What verifying restored documents costs (issue 10, P7). A restore copies each document from the
// backup inside the store (server-side CopyObject) and asks the store for the SHA-256 of the bytes
// it wrote (`x-amz-checksum-algorithm: SHA256`), which is checked against the manifest; s5cmd's
// server-side copy, P7's peer, asks for no checksum. This copies P7's document set (1,000 × 1 MiB
// + 4 × 256 MiB) on the test bed's MinIO both ways, alternately, through the same store code
// (one store with `checksums: true`, the default, and one with `checksums: false`), and reports
// the wall time and MinIO's CPU of each.
//
//   node bench/copy-verify.ts [--reps 3] [--concurrency 16]
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/config.ts';
import { StoreRegistry } from '../src/engine/stores.ts';
import { Testbed, testbedConfig } from '../test/env/testbed.ts';
import { cpuMsOf, inParallel } from './controller-scale-shared.ts';
import { median } from './measure.ts';

const { values } = parseArgs({
  options: { reps: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '16' } },
});
const reps = Number(values.reps);
const concurrency = Number(values.concurrency);
const MiB = 1024 * 1024;
const objects = [
  ...Array.from({ length: 1000 }, (_, i) => ({ key: `medium/${String(i).padStart(4, '0')}`, size: MiB })),
  ...Array.from({ length: 4 }, (_, i) => ({ key: `large/${i}`, size: 256 * MiB })),
];
const totalBytes = objects.reduce((n, o) => n + o.size, 0);

const log = (line: string): void => {
  process.stderr.write(`copy-verify: ${line}\n`);
};

const bed = await Testbed.create();
try {
  const info = await bed.up(['postgres', 'minio']);
  if (!info.postgres || !info.s3) throw new Error('copy-verify: the test bed did not start MinIO');
  const { minioStore } = testbedConfig({ postgres: info.postgres, s3: info.s3 });
  const config = parseConfig(
    { stores: { verified: minioStore, unverified: { ...minioStore, checksums: false } }, projects: {} },
    'copy-verify',
  );
  const stores = new StoreRegistry(config);
  const verified = stores.get('verified');
  const unverified = stores.get('unverified');
  await verified.createBucket('src');
  log(`writing ${objects.length} objects, ${(totalBytes / 1024 ** 3).toFixed(2)} GiB`);
  const block = randomBytes(MiB);
  await inParallel(objects, 4, async ({ key, size }) => {
    const body = size === MiB ? block : Buffer.concat(Array.from({ length: size / MiB }, () => block));
    await unverified.put('src', key, body, { size });
  });
  const minio = bed.pids().minio;
  const rows: { how: string; wallMs: number; minioMs: number; hashed: number }[] = [];
  for (let rep = 0; rep < reps; rep++) {
    // alternate which goes first
    const order = rep % 2 === 0 ? ['verified', 'unverified'] : ['unverified', 'verified'];
    for (const how of order) {
      const store = how === 'verified' ? verified : unverified;
      const bucket = `dst-${how}-${rep}`;
      await store.createBucket(bucket);
      let hashed = 0;
      const before = { t: performance.now(), cpu: cpuMsOf(minio) };
      await inParallel(objects, concurrency, async ({ key, size }) => {
        const copied = await store.copy('src', key, bucket, key, { size });
        if (copied.sha256 !== undefined) hashed++;
      });
      const row = { how, wallMs: performance.now() - before.t, minioMs: cpuMsOf(minio) - before.cpu, hashed };
      rows.push(row);
      log(
        `${how}: ${(row.wallMs / 1000).toFixed(2)} s, MinIO ${(row.minioMs / 1000).toFixed(2)} CPU-s, ${hashed} SHA-256 returned`,
      );
      for (const { key } of objects) await store.delete(bucket, key);
    }
  }
  for (const how of ['verified', 'unverified']) {
    const mine = rows.filter((r) => r.how === how);
    process.stdout.write(
      `${how.padEnd(10)}  wall ${(median(mine.map((r) => r.wallMs)) / 1000).toFixed(2)} s  MinIO CPU ${(median(mine.map((r) => r.minioMs)) / 1000).toFixed(2)} s  (${mine.length} runs: ${mine.map((r) => (r.wallMs / 1000).toFixed(2)).join(', ')} s)\n`,
    );
  }
  process.stdout.write(
    `(${objects.length} objects, ${(totalBytes / 1024 ** 3).toFixed(2)} GiB, ${concurrency} copies at once, server-side CopyObject on the test bed's MinIO)\n`,
  );
} finally {
  await bed.stop();
}
