// The test bed: every real service the suites need, on free loopback ports, under one
// temporary directory that is removed when the bed stops (or, if its owner died, by the next
// start). See docs/adr/0001-test-environment.md.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { isAlive } from './cache.ts';
import { run } from './exec.ts';
import { azuriteBlobMain, goBinary, motoServer, postgresTools, versions, type GoPeerName } from './peers.ts';
import { startProcess, stopProcess, waitReady, type ServiceProcess } from './process.ts';

export const serviceNames = ['postgres', 'minio', 'kubernetes', 'moto', 'azurite', 'gcs'] as const;
export type ServiceName = (typeof serviceNames)[number];

/** What `up` returns when only some services were asked for. */
export type PartialTestbedInfo = Pick<TestbedInfo, 'dir'> & Partial<Omit<TestbedInfo, 'dir'>>;

export interface TestbedInfo {
  dir: string;
  postgres: { host: string; port: number; user: string; password: string; url: string; binDir: string };
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  kube: { server: string; token: string; kubeconfig: string; etcd: string };
  rds: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  azure: { endpoint: string; account: string; key: string; connectionString: string };
  gcs: { endpoint: string };
}

const DIR_PREFIX = 'lc2-testbed-';
// Azurite's documented development account; it is public and only ever talks to loopback.
const AZURITE_ACCOUNT = 'devstoreaccount1';
const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.on('error', () => {
      resolve(false);
    });
    server.listen(port, '127.0.0.1', () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}

/**
 * A free loopback port below Linux's ephemeral range (32768+), so that the outgoing connections
 * of other processes cannot take it between our check and the service's bind. A clash that
 * still happens is retried by `withPortRetry`.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await canBind(port)) return port;
  }
}

async function httpOk(url: string, accept: (status: number) => boolean = (s) => s === 200): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.body?.cancel();
  return accept(res.status);
}

/**
 * A raw request to the API server (its certificate is self-signed by --cert-dir). Raw JSON on
 * purpose: client-node's typed models drop fields they spell differently (`default`,
 * `x-kubernetes-validations`) when given plain objects.
 */
export async function kubeRequest(
  server: string,
  token: string,
  request: { method?: string; path: string; headers?: Record<string, string>; body?: unknown },
): Promise<{ status: number; body: string }> {
  const payload = request.body === undefined ? undefined : JSON.stringify(request.body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${server}${request.path}`,
      {
        method: request.method ?? 'GET',
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...request.headers,
          authorization: `Bearer ${token}`,
        },
        rejectUnauthorized: false,
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(payload);
  });
}

/** GET against the API server. */
export async function kubeGet(
  server: string,
  token: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return kubeRequest(server, token, { path, headers });
}

function readNumber(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Kills the processes and removes the directory of test beds whose owner process died. */
export function sweepStaleTestbeds(): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(DIR_PREFIX)) continue;
    const dir = join(tmpdir(), entry);
    const owner = readNumber(join(dir, 'owner.pid'));
    // a bed still being created has no owner file yet; leave it alone
    if (owner === undefined || (owner > 0 && isAlive(owner))) continue;
    killRecorded(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

// Every service runs with its working directory in the bed, so a recorded pid is only killed
// when it still belongs to this bed (pids get reused).
function killRecorded(dir: string): void {
  let lines: string[];
  try {
    lines = readFileSync(join(dir, 'pids'), 'utf8').trim().split('\n');
  } catch {
    return;
  }
  for (const line of lines) {
    const pid = Number(line.split(' ')[0]);
    if (!(pid > 0)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/cwd`).startsWith(dir)) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function systemUser(name: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (line === undefined) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export class Testbed {
  readonly dir: string;
  private readonly procs: ServiceProcess[] = [];
  private readonly logDir: string;
  private readonly exitHandler = (): void => {
    for (const p of this.procs) p.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  };

  private constructor(dir: string) {
    this.dir = dir;
    this.logDir = join(dir, 'logs');
    process.on('exit', this.exitHandler);
  }

  static async create(): Promise<Testbed> {
    sweepStaleTestbeds();
    const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
    // services that drop root (PostgreSQL) must be able to reach their sub-directory
    chmodSync(dir, 0o755);
    const bed = new Testbed(dir);
    await mkdir(bed.logDir);
    await writeFile(join(dir, 'owner.pid'), String(process.pid));
    return bed;
  }

  private async start(
    name: string,
    command: string,
    args: string[],
    extra: Partial<Parameters<typeof startProcess>[3]> = {},
  ) {
    const proc = startProcess(name, command, args, { logDir: this.logDir, cwd: this.dir, ...extra });
    this.procs.push(proc);
    await appendFile(join(this.dir, 'pids'), `${proc.pid} ${name}\n`);
    return proc;
  }

  async stop(): Promise<void> {
    // the API server's clients first, etcd last
    const order = (p: ServiceProcess): number =>
      ['kube-controller-manager', 'kube-apiserver', 'etcd'].indexOf(p.name);
    const groups = [0, 1, -1, 2];
    for (const g of groups)
      await Promise.all(this.procs.filter((p) => order(p) === g).map((p) => stopProcess(p)));
    process.off('exit', this.exitHandler);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Starts a service again (on new ports) when one of its ports was taken meanwhile. */
  private async withPortRetry<T>(dirName: string, procNames: string[], start: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await start();
      } catch (err) {
        if (attempt >= 3 || !/address already in use|EADDRINUSE/i.test(String(err))) throw err;
        process.stderr.write(
          `test bed: ${dirName}: a port was taken meanwhile; starting it again on other ports\n`,
        );
        const failed = this.procs.filter((p) => procNames.includes(p.name));
        await Promise.all(failed.map((p) => stopProcess(p)));
        for (const p of failed) this.procs.splice(this.procs.indexOf(p), 1);
        await rm(join(this.dir, dirName), { recursive: true, force: true });
      }
    }
  }

  /** Starts the services (all of them unless `only` names some) and returns how to reach them. */
  async up(only: readonly ServiceName[] = serviceNames): Promise<PartialTestbedInfo> {
    // Go builds share one build cache and both cores: run them one after another.
    let goQueue: Promise<unknown> = Promise.resolve();
    const build = (name: GoPeerName): Promise<string> => {
      const next = goQueue.then(() => goBinary(name));
      goQueue = next.catch(() => undefined);
      return next;
    };
    const want = (s: ServiceName): boolean => only.includes(s);
    const none = Promise.resolve(undefined);
    const retry = this.withPortRetry.bind(this);
    const [postgres, s3, kube, rds, azure, gcs] = await Promise.all([
      want('postgres') ? retry('postgres', ['postgres'], () => this.startPostgres()) : none,
      want('minio')
        ? build('minio').then((bin) => retry('minio', ['minio'], () => this.startMinio(bin)))
        : none,
      want('kubernetes')
        ? retry('kubernetes', ['etcd', 'kube-apiserver', 'kube-controller-manager'], () =>
            this.startKubernetes(build),
          )
        : none,
      want('moto') ? motoServer().then((bin) => retry('moto', ['moto'], () => this.startMoto(bin))) : none,
      want('azurite') ? retry('azurite', ['azurite'], () => this.startAzurite()) : none,
      want('gcs')
        ? build('fake-gcs-server').then((bin) => retry('gcs', ['fake-gcs-server'], () => this.startGcs(bin)))
        : none,
    ]);
    const info: PartialTestbedInfo = { dir: this.dir, postgres, s3, kube, rds, azure, gcs };
    await writeFile(join(this.dir, 'testbed.json'), JSON.stringify(info, null, 2));
    return info;
  }

  private async startPostgres(): Promise<TestbedInfo['postgres']> {
    const binDir = await postgresTools();
    const base = join(this.dir, 'postgres');
    await mkdir(base);
    const password = randomBytes(12).toString('hex');
    await writeFile(join(base, 'pwfile'), `${password}\n`);
    // PostgreSQL refuses to run as root; drop to the postgres system user when we are root.
    const user = process.getuid?.() === 0 ? (systemUser('postgres') ?? systemUser('nobody')) : undefined;
    if (user) {
      chownSync(base, user.uid, user.gid);
      chownSync(join(base, 'pwfile'), user.uid, user.gid);
    }
    const ids = user ? { uid: user.uid, gid: user.gid } : {};
    const data = join(base, 'data');
    await run(
      join(binDir, 'initdb'),
      [
        '-D',
        data,
        '-U',
        'lc2',
        `--pwfile=${join(base, 'pwfile')}`,
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '-E',
        'UTF8',
        '--no-locale',
        '--no-sync',
      ],
      { ...ids, cwd: base },
    );
    const port = await freePort();
    const settings = [
      'listen_addresses=127.0.0.1',
      'fsync=off',
      'synchronous_commit=off',
      'full_page_writes=off',
      'max_connections=300',
      'shared_buffers=128MB',
    ];
    const proc = await this.start(
      'postgres',
      join(binDir, 'postgres'),
      ['-D', data, '-p', String(port), '-k', base, ...settings.flatMap((s) => ['-c', s])],
      ids,
    );
    const conn = { host: '127.0.0.1', port, user: 'lc2', password };
    await waitReady(proc, async () => {
      const client = new pg.Client({ ...conn, database: 'postgres', connectionTimeoutMillis: 2000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    });
    return { ...conn, binDir, url: `postgresql://lc2:${password}@127.0.0.1:${port}/postgres` };
  }

  /** One more MinIO server beside the bed's, named `name` (e.g. for copies between two servers). */
  async upMinio(name: string): Promise<TestbedInfo['s3']> {
    const bin = await goBinary('minio');
    return this.withPortRetry(name, [name], () => this.startMinio(bin, name));
  }

  /** The process ids of the bed's services by name (e.g. to read their CPU time from /proc). */
  pids(): Record<string, number> {
    return Object.fromEntries(this.procs.map((p) => [p.name, p.pid]));
  }

  private async startMinio(bin: string, name = 'minio'): Promise<TestbedInfo['s3']> {
    const [port, consolePort] = [await freePort(), await freePort()];
    const accessKeyId = 'lc2testbed';
    const secretAccessKey = randomBytes(16).toString('hex');
    const data = join(this.dir, name);
    await mkdir(data);
    const env = {
      ...process.env,
      MINIO_ROOT_USER: accessKeyId,
      MINIO_ROOT_PASSWORD: secretAccessKey,
      MINIO_BROWSER: 'off',
    };
    const proc = await this.start(
      name,
      bin,
      [
        'server',
        data,
        '--address',
        `127.0.0.1:${port}`,
        '--console-address',
        `127.0.0.1:${consolePort}`,
        '--quiet',
      ],
      { env },
    );
    const endpoint = `http://127.0.0.1:${port}`;
    await waitReady(proc, () => httpOk(`${endpoint}/minio/health/ready`));
    return { endpoint, region: 'us-east-1', accessKeyId, secretAccessKey };
  }

  private async startKubernetes(build: (name: GoPeerName) => Promise<string>): Promise<TestbedInfo['kube']> {
    const [etcdBin, apiserverBin, kcmBin] = await Promise.all([
      build('etcd'),
      build('kube-apiserver'),
      build('kube-controller-manager'),
    ]);
    const dir = join(this.dir, 'kubernetes');
    await mkdir(dir);
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcd = await this.start('etcd', etcdBin, [
      '--name=testbed',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=testbed=${peerUrl}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitReady(etcd, async () =>
      (
        await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text())
      ).includes('"true"'),
    );

    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const token = randomBytes(24).toString('hex');
    await writeFile(join(dir, 'tokens.csv'), `${token},testbed-admin,testbed-admin,system:masters\n`);
    const port = await freePort();
    const server = `https://127.0.0.1:${port}`;
    const apiserver = await this.start('kube-apiserver', apiserverBin, [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      '--enable-priority-and-fairness=false',
    ]);
    await waitReady(apiserver, async () => (await kubeGet(server, token, '/readyz')).status === 200, 90_000);

    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kubeconfigYaml(server, token));
    const kcm = await this.start('kube-controller-manager', kcmBin, [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--controllers=*',
      '--leader-elect=false',
      `--service-account-private-key-file=${join(dir, 'sa.key')}`,
      '--use-service-account-credentials=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${await freePort()}`,
      `--cert-dir=${join(dir, 'kcm-certs')}`,
      '--cluster-name=lc2-testbed',
    ]);
    // the service-account controller creating `default` in `default` shows the controllers run
    await waitReady(
      kcm,
      async () =>
        (await kubeGet(server, token, '/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
      90_000,
    );
    return { server, token, kubeconfig, etcd: etcdUrl };
  }

  private async startMoto(bin: string): Promise<TestbedInfo['rds']> {
    const port = await freePort();
    const proc = await this.start('moto', bin, ['-H', '127.0.0.1', '-p', String(port)]);
    const endpoint = `http://127.0.0.1:${port}`;
    await waitReady(proc, () => httpOk(`${endpoint}/moto-api/data.json`));
    // moto accepts any credentials; these only keep the SDK from searching for real ones
    return { endpoint, region: 'us-east-1', accessKeyId: 'testbed', secretAccessKey: 'testbed' };
  }

  private async startAzurite(): Promise<TestbedInfo['azure']> {
    const port = await freePort();
    const location = join(this.dir, 'azurite');
    await mkdir(location);
    const proc = await this.start('azurite', process.execPath, [
      azuriteBlobMain(),
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--location',
      location,
      '--skipApiVersionCheck',
      '--loose',
      '--silent',
    ]);
    const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
    await waitReady(proc, () => httpOk(`${endpoint}?comp=list`, (s) => s > 0));
    return {
      endpoint,
      account: AZURITE_ACCOUNT,
      key: AZURITE_KEY,
      connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
    };
  }

  private async startGcs(bin: string): Promise<TestbedInfo['gcs']> {
    const port = await freePort();
    const root = join(this.dir, 'gcs');
    await mkdir(root);
    const proc = await this.start('fake-gcs-server', bin, [
      '-scheme',
      'http',
      '-host',
      '127.0.0.1',
      '-port',
      String(port),
      '-backend',
      'filesystem',
      '-filesystem-root',
      root,
      '-public-host',
      `127.0.0.1:${port}`,
      '-log-level',
      'warn',
    ]);
    const endpoint = `http://127.0.0.1:${port}`;
    await waitReady(proc, () => httpOk(`${endpoint}/storage/v1/b`));
    return { endpoint };
  }
}

function kubeconfigYaml(server: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: ${server}
    insecure-skip-tls-verify: true
users:
- name: testbed-admin
  user:
    token: ${token}
contexts:
- name: testbed
  context:
    cluster: testbed
    user: testbed-admin
current-context: testbed
`;
}

/** The settings a developer's shell (or a child process) needs to reach the bed. */
export function testbedEnv(info: PartialTestbedInfo): Record<string, string> {
  const env: Record<string, string> = { LC2_TESTBED: join(info.dir, 'testbed.json') };
  if (info.postgres) {
    Object.assign(env, {
      PGHOST: info.postgres.host,
      PGPORT: String(info.postgres.port),
      PGUSER: info.postgres.user,
      PGPASSWORD: info.postgres.password,
      PGDATABASE: 'postgres',
      LC2_PG_BIN: info.postgres.binDir,
    });
  }
  if (info.s3) {
    Object.assign(env, {
      LC2_S3_ENDPOINT: info.s3.endpoint,
      LC2_S3_ACCESS_KEY_ID: info.s3.accessKeyId,
      LC2_S3_SECRET_ACCESS_KEY: info.s3.secretAccessKey,
    });
  }
  if (info.kube) Object.assign(env, { KUBECONFIG: info.kube.kubeconfig });
  if (info.rds) Object.assign(env, { LC2_RDS_ENDPOINT: info.rds.endpoint });
  if (info.azure) Object.assign(env, { AZURE_STORAGE_CONNECTION_STRING: info.azure.connectionString });
  if (info.gcs) Object.assign(env, { STORAGE_EMULATOR_HOST: info.gcs.endpoint });
  return env;
}

export { versions };

/**
 * Configuration pieces (as in lc2-backup.yaml) that reach this bed's MinIO and PostgreSQL. The
 * secrets go into environment variables of this process and the configuration only names them,
 * as a real configuration must.
 */
export function testbedConfig(info: Pick<TestbedInfo, 'postgres' | 's3'>): {
  minioStore: Record<string, unknown>;
  database: (name: string, port?: number) => Record<string, unknown>;
} {
  process.env.LC2_TESTBED_PG_PASSWORD = info.postgres.password;
  process.env.LC2_TESTBED_S3_KEY = info.s3.accessKeyId;
  process.env.LC2_TESTBED_S3_SECRET = info.s3.secretAccessKey;
  return {
    minioStore: {
      type: 's3',
      endpoint: info.s3.endpoint,
      accessKeyId: { env: 'LC2_TESTBED_S3_KEY' },
      secretAccessKey: { env: 'LC2_TESTBED_S3_SECRET' },
    },
    database: (name, port = info.postgres.port) => ({
      host: info.postgres.host,
      port,
      database: name,
      user: info.postgres.user,
      password: { env: 'LC2_TESTBED_PG_PASSWORD' },
    }),
  };
}
