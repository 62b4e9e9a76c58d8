// Where the API server is and how to authenticate to it, found the way kubectl and client-go do:
// an explicit kubeconfig path, else $KUBECONFIG (the first file that names the current
// context; files are merged, first one wins), else ~/.kube/config, else the Pod's service
// account (in-cluster). Supported credentials: a CA (file or data) or insecure-skip-tls-verify,
// client certificates (file or data), a bearer token (inline or a file, re-read every minute as
// client-go does, since projected tokens rotate), basic auth, and exec credential plugins
// (`aws eks get-token`, `gke-gcloud-auth-plugin`, …; cached until their expiry).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';

const run = promisify(execFile);

/** What a request needs to authenticate; `cert`/`key` change only with an exec plugin. */
export interface Credentials {
  token?: string;
  basic?: { username: string; password: string };
  cert?: Buffer;
  key?: Buffer;
}

export interface ClusterAccess {
  /** https://host:port, without a trailing slash. */
  server: string;
  ca?: Buffer;
  insecureSkipTLSVerify: boolean;
  tlsServerName?: string;
  /** Current credentials (cheap when cached); `refresh` forces a new token after a 401. */
  credentials: (refresh?: boolean) => Promise<Credentials>;
  /** Where this came from, for messages: a file and context, or `in-cluster`. */
  source: string;
}

export interface LoadOptions {
  /** A kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster). */
  kubeconfig?: string;
  /** A context of the kubeconfig (default: its current-context). */
  context?: string;
  env?: NodeJS.ProcessEnv;
}

const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

interface Named<T> {
  name: string;
  [key: string]: unknown;
  value: T;
}

interface ExecConfig {
  command: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
  apiVersion?: string;
}

interface UserConfig {
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  exec?: ExecConfig;
  'auth-provider'?: { name?: string };
}

interface ClusterConfig {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
}

interface ParsedFile {
  path: string;
  currentContext?: string;
  contexts: Named<{ cluster?: string; user?: string }>[];
  clusters: Named<ClusterConfig>[];
  users: Named<UserConfig>[];
}

function entries<T>(doc: Record<string, unknown>, list: string, field: string): Named<T>[] {
  const items = doc[list];
  if (!Array.isArray(items)) return [];
  return (items as Record<string, unknown>[]).map((item) => ({
    name: String(item.name),
    value: (item[field] ?? {}) as T,
  }));
}

function readKubeconfig(path: string): ParsedFile {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`kubeconfig ${path}: cannot be read as YAML: ${(err as Error).message}`, { cause: err });
  }
  const record = (doc ?? {}) as Record<string, unknown>;
  return {
    path,
    ...(typeof record['current-context'] === 'string' ? { currentContext: record['current-context'] } : {}),
    contexts: entries(record, 'contexts', 'context'),
    clusters: entries(record, 'clusters', 'cluster'),
    users: entries(record, 'users', 'user'),
  };
}

/** A file path of the kubeconfig, relative to the kubeconfig's own directory. */
function relative(file: ParsedFile, path: string): string {
  return isAbsolute(path) ? path : join(dirname(file.path), path);
}

function bytes(file: ParsedFile, data: string | undefined, path: string | undefined): Buffer | undefined {
  if (data !== undefined && data !== '') return Buffer.from(data, 'base64');
  if (path !== undefined && path !== '') return readFileSync(relative(file, path));
  return undefined;
}

/** Caches what `fetch` returns until `expiresAt` (or for `maxAgeMs`), or until a refresh is asked. */
function cached(
  fetch: () => Promise<{ value: Credentials; expiresAt?: number }>,
  maxAgeMs = Number.POSITIVE_INFINITY,
): (refresh?: boolean) => Promise<Credentials> {
  let current: { value: Credentials; until: number } | undefined;
  let pending: Promise<Credentials> | undefined;
  return (refresh = false) => {
    if (!refresh && current && Date.now() < current.until) return Promise.resolve(current.value);
    pending ??= fetch()
      .then(({ value, expiresAt }) => {
        // a token is renewed 10 s before it expires
        const until = Math.min(Date.now() + maxAgeMs, (expiresAt ?? Number.POSITIVE_INFINITY) - 10_000);
        current = { value, until };
        return value;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}

async function execCredential(
  exec: ExecConfig,
  where: string,
  env: NodeJS.ProcessEnv,
): Promise<{ value: Credentials; expiresAt?: number }> {
  const apiVersion = exec.apiVersion ?? 'client.authentication.k8s.io/v1';
  const extra = Object.fromEntries((exec.env ?? []).map((e) => [e.name, e.value]));
  let stdout: string;
  try {
    ({ stdout } = await run(exec.command, exec.args ?? [], {
      env: {
        ...env,
        ...extra,
        KUBERNETES_EXEC_INFO: JSON.stringify({
          apiVersion,
          kind: 'ExecCredential',
          spec: { interactive: false },
        }),
      },
      timeout: 60_000,
      maxBuffer: 1024 * 1024,
    }));
  } catch (err) {
    const output = (err as { stderr?: unknown }).stderr;
    const stderr = typeof output === 'string' ? output.trim() : '';
    throw new Error(
      `${where}: the exec credential plugin \`${exec.command}\` failed: ${stderr || (err as Error).message}; check that it is installed and logged in`,
      { cause: err },
    );
  }
  let status: {
    token?: string;
    clientCertificateData?: string;
    clientKeyData?: string;
    expirationTimestamp?: string;
  };
  try {
    status = (JSON.parse(stdout) as { status?: typeof status }).status ?? {};
  } catch (err) {
    throw new Error(
      `${where}: the exec credential plugin \`${exec.command}\` printed no ExecCredential JSON`,
      {
        cause: err,
      },
    );
  }
  const value: Credentials = {
    ...(status.token === undefined ? {} : { token: status.token }),
    ...(status.clientCertificateData === undefined
      ? {}
      : { cert: Buffer.from(status.clientCertificateData) }),
    ...(status.clientKeyData === undefined ? {} : { key: Buffer.from(status.clientKeyData) }),
  };
  const expiresAt =
    status.expirationTimestamp === undefined ? undefined : Date.parse(status.expirationTimestamp);
  return { value, ...(expiresAt === undefined || Number.isNaN(expiresAt) ? {} : { expiresAt }) };
}

function userCredentials(
  file: ParsedFile,
  user: UserConfig,
  where: string,
  env: NodeJS.ProcessEnv,
): (refresh?: boolean) => Promise<Credentials> {
  if (user['auth-provider'] !== undefined) {
    throw new Error(
      `${where}: auth-provider "${user['auth-provider'].name ?? '?'}" is not supported (it was removed from kubectl too); use an exec credential plugin`,
    );
  }
  const cert = bytes(file, user['client-certificate-data'], user['client-certificate']);
  const key = bytes(file, user['client-key-data'], user['client-key']);
  const fixed: Credentials = {
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(user.username === undefined
      ? {}
      : { basic: { username: user.username, password: user.password ?? '' } }),
  };
  const { exec } = user;
  if (exec !== undefined) {
    return cached(async () => {
      const got = await execCredential(exec, where, env);
      return { ...got, value: { ...fixed, ...got.value } };
    });
  }
  if (user.token !== undefined) return () => Promise.resolve({ ...fixed, token: user.token });
  const { tokenFile } = user;
  if (tokenFile !== undefined) {
    const path = relative(file, tokenFile);
    return cached(
      () => Promise.resolve({ value: { ...fixed, token: readFileSync(path, 'utf8').trim() } }),
      60_000,
    );
  }
  return () => Promise.resolve(fixed);
}

function fromFiles(paths: string[], options: LoadOptions, env: NodeJS.ProcessEnv): ClusterAccess {
  const files = paths.map(readKubeconfig);
  const contextName = options.context ?? files.find((f) => f.currentContext)?.currentContext;
  const names = paths.join(':');
  if (contextName === undefined) {
    throw new Error(
      `kubeconfig ${names}: no current-context; set one (kubectl config use-context) or pass a context`,
    );
  }
  const find = (kind: 'contexts' | 'clusters' | 'users', name: string): [ParsedFile, unknown] | undefined => {
    for (const f of files) {
      const hit = f[kind].find((e) => e.name === name);
      if (hit) return [f, hit.value];
    }
    return undefined;
  };
  const context = find('contexts', contextName) as
    [ParsedFile, { cluster?: string; user?: string }] | undefined;
  if (!context) throw new Error(`kubeconfig ${names}: context "${contextName}" is not defined`);
  const [, { cluster: clusterName = '', user: userName = '' }] = context;
  const cluster = find('clusters', clusterName) as [ParsedFile, ClusterConfig] | undefined;
  if (!cluster?.[1].server) {
    throw new Error(
      `kubeconfig ${names}: context "${contextName}" names cluster "${clusterName}", which has no server`,
    );
  }
  const [clusterFile, c] = cluster;
  const where = `kubeconfig ${names}, context "${contextName}"`;
  const user = find('users', userName) as [ParsedFile, UserConfig] | undefined;
  const ca = bytes(clusterFile, c['certificate-authority-data'], c['certificate-authority']);
  return {
    server: (c.server ?? '').replace(/\/+$/, ''),
    ...(ca === undefined ? {} : { ca }),
    insecureSkipTLSVerify: c['insecure-skip-tls-verify'] === true,
    ...(c['tls-server-name'] === undefined ? {} : { tlsServerName: c['tls-server-name'] }),
    credentials: user ? userCredentials(user[0], user[1], where, env) : () => Promise.resolve({}),
    source: where,
  };
}

function inCluster(env: NodeJS.ProcessEnv): ClusterAccess {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const tokenPath = join(serviceAccountDir, 'token');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(serviceAccountDir, 'ca.crt')),
    insecureSkipTLSVerify: false,
    credentials: cached(
      () => Promise.resolve({ value: { token: readFileSync(tokenPath, 'utf8').trim() } }),
      60_000,
    ),
    source: 'in-cluster (service account)',
  };
}

/** Finds the cluster to talk to; an error says what was looked for and how to fix it. */
export function loadClusterAccess(options: LoadOptions = {}): ClusterAccess {
  const env = options.env ?? process.env;
  if (options.kubeconfig !== undefined) return fromFiles([options.kubeconfig], options, env);
  const fromEnv = (env.KUBECONFIG ?? '').split(':').filter((p) => p !== '' && existsSync(p));
  if (fromEnv.length > 0) return fromFiles(fromEnv, options, env);
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromFiles([home], options, env);
  if (env.KUBERNETES_SERVICE_HOST !== undefined && existsSync(join(serviceAccountDir, 'token'))) {
    return inCluster(env);
  }
  throw new Error(
    `no Kubernetes cluster configured: KUBECONFIG is ${env.KUBECONFIG === undefined ? 'unset' : `"${env.KUBECONFIG}" (no such file)`}, ${home} does not exist, and this is not a Pod with a service account; set KUBECONFIG to a kubeconfig file`,
  );
}
