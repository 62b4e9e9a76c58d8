// Where each real service's program comes from, pinned to an exact version, and how to get it
// onto a fresh machine from the registries this machine reaches (Debian, the Go module proxy,
// PyPI, npm). Everything built lands in the user cache, keyed by name and version.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { access, constants, copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot, withCacheLock, withProgress } from './cache.ts';
import { CommandError, run } from './exec.ts';

export const versions = {
  postgres: '15',
  minio: 'v0.0.0-20260212201848-7aac2a2c5b7c',
  etcd: 'v3.6.16',
  kubernetes: 'v1.37.2',
  fakeGcsServer: 'v1.56.1',
  moto: '5.2.5',
  s5cmd: 'v2.3.0',
  warp: 'v1.3.1',
  // operations tooling (test/integration/ops/)
  helm: 'v3.22.0',
  prometheus: 'v0.316.0',
  gopherLua: 'v1.1.2',
} as const;

interface GoPeer {
  name: string;
  module: string;
  version: string;
  /** The package to build, inside `module`. */
  pkg: string;
  estimate: string;
  /** Extra go.mod lines (replace directives). */
  goModExtra?: (goModCache: string) => Promise<string>;
  /** Extra environment for `go mod tidy` and `go build`. */
  env?: Record<string, string>;
  /**
   * A program of our own instead of a tool: this directory's `main.go` is copied into the
   * generated module (which requires `module`) and built as its main package; `pkg` is `.`.
   */
  sourceDir?: string;
}

async function exists(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

async function goEnv(name: string): Promise<string> {
  return (await run('go', ['env', name])).trim();
}

// kubernetes' own go.mod points every k8s.io/X staging module at ./staging/...; a module that
// requires k8s.io/kubernetes has to replace each of them with the published k8s.io/X v0.N.M.
async function kubernetesReplaces(): Promise<string> {
  const modCache = await goEnv('GOMODCACHE');
  await run('go', ['mod', 'download', `k8s.io/kubernetes@${versions.kubernetes}`]);
  const goMod = await readFile(
    join(modCache, 'cache', 'download', 'k8s.io', 'kubernetes', '@v', `${versions.kubernetes}.mod`),
    'utf8',
  );
  const staging = versions.kubernetes.replace(/^v1\./, 'v0.');
  const lines = [...goMod.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s*=>\s*\.\/staging\//gm)].map(
    (m) => `\t${m[1] ?? ''} => ${m[1] ?? ''} ${staging}`,
  );
  if (lines.length === 0)
    throw new Error(`no staging replaces found in k8s.io/kubernetes ${versions.kubernetes} go.mod`);
  return `replace (\n${lines.join('\n')}\n)\n`;
}

const argocdLuaDir = join(dirname(fileURLToPath(import.meta.url)), 'argocd-lua');
// the runner's cache key changes with its source, so an edit rebuilds it
const argocdLuaHash = createHash('sha256')
  .update(readFileSync(join(argocdLuaDir, 'main.go')))
  .digest('hex')
  .slice(0, 12);

const goPeers: Record<string, GoPeer> = {
  minio: {
    name: 'minio',
    module: 'github.com/minio/minio',
    version: versions.minio,
    pkg: 'github.com/minio/minio',
    estimate: '3 min',
  },
  etcd: {
    name: 'etcd',
    module: 'go.etcd.io/etcd/server/v3',
    version: versions.etcd,
    pkg: 'go.etcd.io/etcd/server/v3',
    estimate: '1 min',
  },
  'kube-apiserver': {
    name: 'kube-apiserver',
    module: 'k8s.io/kubernetes',
    version: versions.kubernetes,
    pkg: 'k8s.io/kubernetes/cmd/kube-apiserver',
    estimate: '5 min',
    goModExtra: kubernetesReplaces,
  },
  'kube-controller-manager': {
    name: 'kube-controller-manager',
    module: 'k8s.io/kubernetes',
    version: versions.kubernetes,
    pkg: 'k8s.io/kubernetes/cmd/kube-controller-manager',
    estimate: '2 min',
    goModExtra: kubernetesReplaces,
  },
  'fake-gcs-server': {
    name: 'fake-gcs-server',
    module: 'github.com/fsouza/fake-gcs-server',
    version: versions.fakeGcsServer,
    pkg: 'github.com/fsouza/fake-gcs-server',
    estimate: '1 min',
  },
  // benchmark peers (bench/): `go install` is refused for s5cmd; warp's checksum-database
  // lookup is refused here, so its modules skip it
  s5cmd: {
    name: 's5cmd',
    module: 'github.com/peak/s5cmd/v2',
    version: versions.s5cmd,
    pkg: 'github.com/peak/s5cmd/v2',
    estimate: '15 s',
  },
  warp: {
    name: 'warp',
    module: 'github.com/minio/warp',
    version: versions.warp,
    pkg: 'github.com/minio/warp',
    estimate: '30 s',
    env: { GONOSUMDB: 'github.com/minio' },
  },
  // operations tooling: helm lint/template, promtool check/test rules, Argo CD health Lua
  helm: {
    name: 'helm',
    module: 'helm.sh/helm/v3',
    version: versions.helm,
    pkg: 'helm.sh/helm/v3/cmd/helm',
    estimate: '3 min',
  },
  promtool: {
    name: 'promtool',
    module: 'github.com/prometheus/prometheus',
    version: versions.prometheus,
    pkg: 'github.com/prometheus/prometheus/cmd/promtool',
    estimate: '6 min',
    // without the cloud service-discovery plugins (their SDKs are most of the build); rule
    // checks and rule unit tests do not use them
    env: { GOFLAGS: '-buildvcs=false -tags=remove_all_sd' },
  },
  'argocd-lua-health': {
    name: `argocd-lua-health-${argocdLuaHash}`,
    module: 'github.com/yuin/gopher-lua',
    version: versions.gopherLua,
    pkg: '.',
    estimate: '20 s',
    sourceDir: argocdLuaDir,
  },
};

export type GoPeerName = keyof typeof goPeers;

function hint(err: unknown): string {
  if (err instanceof CommandError && /ENOENT/.test(err.message)) {
    return 'the `go` command is missing: install Go 1.26 (Debian package golang or go.dev) and run again';
  }
  return 'check access to the Go module proxy (GOPROXY), then run again; the build cache makes a retry fast';
}

/**
 * Returns the path of a Go-built peer, building it on first use. `go install mod@version` is
 * refused for modules with replace directives (etcd) or without a version list (some proxies),
 * so every peer is built from a small generated module that requires the exact version.
 */
export async function goBinary(name: GoPeerName): Promise<string> {
  const peer = goPeers[name];
  if (peer === undefined) throw new Error(`unknown peer ${name}`);
  const bin = join(cacheRoot(), 'bin', `${peer.name}-${peer.version}`);
  if (await exists(bin)) return bin;
  return withCacheLock(`${peer.name}-${peer.version}`, async () => {
    if (await exists(bin)) return bin;
    return withProgress(`building ${peer.name} ${peer.version}`, peer.estimate, async () => {
      try {
        await buildGoPeer(peer, bin);
      } catch (err) {
        throw new Error(
          `test bed: could not build ${peer.name} ${peer.version}: ${hint(err)}\n${String(err)}`,
          { cause: err },
        );
      }
      return bin;
    });
  });
}

async function buildGoPeer(peer: GoPeer, bin: string): Promise<void> {
  const dir = join(cacheRoot(), 'build', `${peer.name}-${peer.version}`);
  await mkdir(dir, { recursive: true });
  await mkdir(join(cacheRoot(), 'bin'), { recursive: true });
  const extra = peer.goModExtra ? await peer.goModExtra(await goEnv('GOMODCACHE')) : '';
  await writeFile(
    join(dir, 'go.mod'),
    `module lc2-backup.local/peers/${peer.name}\n\ngo 1.26.0\n\nrequire ${peer.module} ${peer.version}\n\n${extra}`,
  );
  if (peer.sourceDir === undefined) {
    await writeFile(join(dir, 'tools.go'), `//go:build tools\n\npackage tools\n\nimport _ "${peer.pkg}"\n`);
  } else {
    await copyFile(join(peer.sourceDir, 'main.go'), join(dir, 'main.go'));
  }
  const env = peer.env === undefined ? {} : { env: { ...process.env, ...peer.env } };
  await run('go', ['mod', 'tidy'], { cwd: dir, ...env });
  const tmp = `${bin}.tmp-${process.pid}`;
  await run('go', ['build', '-o', tmp, peer.pkg], { cwd: dir, ...env });
  await rename(tmp, bin);
}

/** moto's server, in a virtualenv of its own in the cache. */
export async function motoServer(): Promise<string> {
  const venv = join(cacheRoot(), 'venv', `moto-${versions.moto}`);
  const bin = join(venv, 'bin', 'moto_server');
  if (await exists(bin)) return bin;
  return withCacheLock(`moto-${versions.moto}`, async () => {
    if (await exists(bin)) return bin;
    return withProgress(`installing moto[server] ${versions.moto} from PyPI`, '1 min', async () => {
      await rm(venv, { recursive: true, force: true });
      try {
        await run('python3', ['-m', 'venv', venv]);
        await run(join(venv, 'bin', 'pip'), [
          'install',
          '--quiet',
          '--disable-pip-version-check',
          `moto[server]==${versions.moto}`,
        ]);
      } catch (err) {
        await rm(venv, { recursive: true, force: true });
        throw new Error(
          `test bed: could not install moto ${versions.moto} into ${venv}: needs python3 with venv (Debian: python3-venv) and access to PyPI.\n${String(err)}`,
          { cause: err },
        );
      }
      return bin;
    });
  });
}

const postgresBin = `/usr/lib/postgresql/${versions.postgres}/bin`;

/** PostgreSQL server and client programs from Debian's packages, installed when missing. */
export async function postgresTools(): Promise<string> {
  if (await exists(join(postgresBin, 'postgres'))) return postgresBin;
  return withCacheLock('postgresql-apt', async () => {
    if (await exists(join(postgresBin, 'postgres'))) return postgresBin;
    if (process.getuid?.() !== 0) {
      throw new Error(
        `test bed: PostgreSQL ${versions.postgres} is not installed (no ${postgresBin}/postgres) and this user cannot install it: run \`sudo apt-get install -y postgresql-${versions.postgres}\`.`,
      );
    }
    return withProgress(`installing postgresql-${versions.postgres} with apt-get`, '1 min', async () => {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const install = [
        'install',
        '-y',
        '--no-install-recommends',
        `postgresql-${versions.postgres}`,
        `postgresql-client-${versions.postgres}`,
      ];
      try {
        await run('apt-get', install, { env });
      } catch {
        await run('apt-get', ['update'], { env });
        await run('apt-get', install, { env });
      }
      return postgresBin;
    });
  });
}

/** Azurite comes from npm with the other dev dependencies; this is its blob server's entry point. */
export function azuriteBlobMain(): string {
  const require = createRequire(import.meta.url);
  return join(require.resolve('azurite/package.json'), '..', 'dist', 'src', 'blob', 'main.js');
}
