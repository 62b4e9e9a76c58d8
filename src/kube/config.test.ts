import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClusterAccess } from './config.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lc2-kubeconfig-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function kubeconfig(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

const clusters = `clusters:
- name: a
  cluster:
    server: https://a.example:6443/
    certificate-authority-data: ${Buffer.from('CA-A').toString('base64')}
- name: b
  cluster:
    server: https://b.example
    insecure-skip-tls-verify: true
    tls-server-name: kubernetes
`;

describe('loadClusterAccess', () => {
  it('reads the current context: server, CA data and a bearer token', async () => {
    const path = await kubeconfig(
      'token.yaml',
      `${clusters}users:\n- name: u\n  user:\n    token: secret-token\ncontexts:\n- name: ctx\n  context: {cluster: a, user: u}\ncurrent-context: ctx\n`,
    );
    const access = loadClusterAccess({ kubeconfig: path, env: {} });
    expect(access.server).toBe('https://a.example:6443');
    expect(access.ca?.toString()).toBe('CA-A');
    expect(access.insecureSkipTLSVerify).toBe(false);
    expect(await access.credentials()).toEqual({ token: 'secret-token' });
    expect(access.source).toContain('context "ctx"');
  });

  it('picks another context on request; client certificates from files relative to the kubeconfig', async () => {
    await writeFile(join(dir, 'client.crt'), 'CERT');
    await writeFile(join(dir, 'client.key'), 'KEY');
    const path = await kubeconfig(
      'certs.yaml',
      `${clusters}users:\n- name: c\n  user:\n    client-certificate: client.crt\n    client-key: client.key\ncontexts:\n- name: one\n  context: {cluster: a, user: c}\n- name: two\n  context: {cluster: b, user: c}\ncurrent-context: one\n`,
    );
    const access = loadClusterAccess({ kubeconfig: path, context: 'two', env: {} });
    expect(access.server).toBe('https://b.example');
    expect(access.insecureSkipTLSVerify).toBe(true);
    expect(access.tlsServerName).toBe('kubernetes');
    const creds = await access.credentials();
    expect(creds.cert?.toString()).toBe('CERT');
    expect(creds.key?.toString()).toBe('KEY');
  });

  it('re-reads a token file (rotated service-account tokens) when asked to refresh', async () => {
    await writeFile(join(dir, 'token'), 'first\n');
    const path = await kubeconfig(
      'tokenfile.yaml',
      `${clusters}users:\n- name: f\n  user:\n    tokenFile: token\ncontexts:\n- name: ctx\n  context: {cluster: a, user: f}\ncurrent-context: ctx\n`,
    );
    const access = loadClusterAccess({ kubeconfig: path, env: {} });
    expect((await access.credentials()).token).toBe('first');
    await writeFile(join(dir, 'token'), 'second\n');
    expect((await access.credentials()).token).toBe('first'); // cached for a minute
    expect((await access.credentials(true)).token).toBe('second');
  });

  it('runs an exec credential plugin and caches its token until it expires', async () => {
    const plugin = join(dir, 'plugin.sh');
    const counter = join(dir, 'calls');
    await writeFile(
      plugin,
      `#!/bin/sh\necho x >> ${counter}\nn=$(wc -l < ${counter})\necho "{\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"exec-$n-$PLUGIN_ARG\\",\\"expirationTimestamp\\":\\"2099-01-01T00:00:00Z\\"}}"\n`,
    );
    await chmod(plugin, 0o755);
    const path = await kubeconfig(
      'exec.yaml',
      `${clusters}users:\n- name: e\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ${plugin}\n      env:\n      - {name: PLUGIN_ARG, value: hello}\ncontexts:\n- name: ctx\n  context: {cluster: a, user: e}\ncurrent-context: ctx\n`,
    );
    const access = loadClusterAccess({ kubeconfig: path, env: { PATH: process.env.PATH } });
    expect((await access.credentials()).token).toBe('exec-1-hello');
    expect((await access.credentials()).token).toBe('exec-1-hello');
    expect((await access.credentials(true)).token).toBe('exec-2-hello');
  });

  it('names the plugin and its output when an exec plugin fails', async () => {
    const plugin = join(dir, 'failing.sh');
    await writeFile(plugin, '#!/bin/sh\necho "not logged in: run aws sso login" >&2\nexit 1\n');
    await chmod(plugin, 0o755);
    const path = await kubeconfig(
      'failing.yaml',
      `${clusters}users:\n- name: e\n  user:\n    exec: {command: ${plugin}}\ncontexts:\n- name: ctx\n  context: {cluster: a, user: e}\ncurrent-context: ctx\n`,
    );
    const access = loadClusterAccess({ kubeconfig: path, env: {} });
    await expect(access.credentials()).rejects.toThrow(
      /failing\.sh` failed: not logged in: run aws sso login/,
    );
  });

  it('merges the files of $KUBECONFIG; the first current-context wins', async () => {
    const users = await kubeconfig(
      'users.yaml',
      `users:\n- name: u\n  user: {token: merged}\ncurrent-context: ctx\n`,
    );
    const rest = await kubeconfig(
      'rest.yaml',
      `${clusters}contexts:\n- name: ctx\n  context: {cluster: b, user: u}\n`,
    );
    const access = loadClusterAccess({
      env: { KUBECONFIG: `${join(dir, 'missing.yaml')}:${users}:${rest}` },
    });
    expect(access.server).toBe('https://b.example');
    expect((await access.credentials()).token).toBe('merged');
  });

  it('explains what is missing', async () => {
    const noContext = await kubeconfig('nocontext.yaml', clusters);
    expect(() => loadClusterAccess({ kubeconfig: noContext, env: {} })).toThrow(/no current-context/);
    expect(() => loadClusterAccess({ kubeconfig: noContext, context: 'nope', env: {} })).toThrow(
      /context "nope" is not defined/,
    );
    expect(() =>
      loadClusterAccess({ env: { KUBECONFIG: join(dir, 'absent'), HOME: join(dir, 'no-home') } }),
    ).toThrow(/no Kubernetes cluster configured: KUBECONFIG is ".*absent" \(no such file\).*set KUBECONFIG/);
    const provider = await kubeconfig(
      'provider.yaml',
      `${clusters}users:\n- name: g\n  user:\n    auth-provider: {name: gcp}\ncontexts:\n- name: ctx\n  context: {cluster: a, user: g}\ncurrent-context: ctx\n`,
    );
    expect(() => loadClusterAccess({ kubeconfig: provider, env: {} })).toThrow(
      /auth-provider "gcp" is not supported.*exec credential plugin/,
    );
  });
});
