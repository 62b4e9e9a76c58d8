// lc2-backup's Kubernetes client and informer against the test bed's real API server.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, describe, expect, it } from 'vitest';
import { kubeClient, testbed, useNamespace } from '../../test/env/fixtures.ts';
import { KubeClient, KubeError, mergePatch } from './client.ts';
import { Informer } from './informer.ts';

interface ConfigMap {
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

const ns = useNamespace('kube-client');
const kube = kubeClient();
afterAll(() => {
  kube.close();
});

const path = (name?: string): string =>
  `/api/v1/namespaces/${ns.name}/configmaps${name === undefined ? '' : `/${name}`}`;

const configMap = (name: string, data: Record<string, string>, labels = { test: 'informer' }): ConfigMap => ({
  metadata: { name, labels },
  data,
});

describe('KubeClient', () => {
  it('creates, reads, patches conditionally and deletes; errors carry the code and the server message', async () => {
    const created = await kube.request<ConfigMap>('POST', path(), {
      body: { apiVersion: 'v1', kind: 'ConfigMap', ...configMap('one', { a: '1' }) },
    });
    expect(created.metadata.resourceVersion).toMatch(/^\d+$/);
    expect((await kube.get<ConfigMap>(path('one')))?.data).toEqual({ a: '1' });
    expect(await kube.get(path('absent'))).toBeUndefined();

    const patched = await kube.request<ConfigMap>('PATCH', path('one'), {
      body: { metadata: { resourceVersion: created.metadata.resourceVersion }, data: { a: '2' } },
      contentType: mergePatch,
    });
    expect(patched.data).toEqual({ a: '2' });
    // the same precondition again is stale now: 409 with the API server's own message
    const stale = kube.request('PATCH', path('one'), {
      body: { metadata: { resourceVersion: created.metadata.resourceVersion }, data: { a: '3' } },
      contentType: mergePatch,
    });
    await expect(stale).rejects.toBeInstanceOf(KubeError);
    await expect(stale).rejects.toMatchObject({ code: 409, reason: 'Conflict' });
    await expect(stale).rejects.toThrow(
      /PATCH .*configmaps\/one: 409 Conflict: .*the object has been modified/,
    );

    const duplicate = kube.request('POST', path(), {
      body: { apiVersion: 'v1', kind: 'ConfigMap', ...configMap('one', {}) },
    });
    await expect(duplicate).rejects.toMatchObject({ code: 409, reason: 'AlreadyExists' });
    await kube.request('DELETE', path('one'));
    expect(await kube.get(path('one'))).toBeUndefined();
  });

  it('keeps its connections: 60 calls, 20 at a time, on one HTTP/2 connection (a handful of HTTP/1.1 ones)', async () => {
    const connections = async (client: KubeClient): Promise<number> => {
      let sockets = 0;
      const count = (): void => {
        sockets++;
      };
      subscribe('net.client.socket', count);
      try {
        for (let round = 0; round < 3; round++) {
          await Promise.all(Array.from({ length: 20 }, () => client.request('GET', path())));
        }
      } finally {
        unsubscribe('net.client.socket', count);
        client.close();
      }
      return sockets;
    };
    // the API server offers h2: every call a stream of one connection
    expect(await connections(KubeClient.load({ kubeconfig: testbed().kube.kubeconfig }))).toBe(1);
    // HTTP/1.1: the first round may open up to 20 (the pool's bound is 32); later rounds reuse them
    const http1 = await connections(KubeClient.load({ kubeconfig: testbed().kube.kubeconfig, http2: false }));
    expect(http1).toBeLessThanOrEqual(20);
    expect(http1).toBeGreaterThan(0);
  });
});

describe('Informer', () => {
  it('lists, then sees adds, updates and deletes in order, across watches the server ends', async () => {
    await kube.request('POST', path(), {
      body: { apiVersion: 'v1', kind: 'ConfigMap', ...configMap('before', { n: '0' }) },
    });
    await kube.request('POST', path(), {
      body: { apiVersion: 'v1', kind: 'ConfigMap', ...configMap('other', {}, { test: 'not-this' }) },
    });
    const events: string[] = [];
    const informer = new Informer<ConfigMap>(
      kube,
      path(),
      {
        onAdd: (o) => events.push(`add ${o.metadata.name}`),
        onUpdate: (o) => events.push(`update ${o.metadata.name} ${o.data?.n ?? ''}`),
        onDelete: (o) => events.push(`delete ${o.metadata.name}`),
      },
      // every watch lasts a second: the changes below span several, and none may be lost
      { labelSelector: 'test=informer', watchTimeoutSeconds: 1 },
    );
    await informer.start();
    try {
      expect(events).toEqual(['add before']);
      expect(informer.get(ns.name, 'before')?.data).toEqual({ n: '0' });
      expect(informer.get(ns.name, 'other')).toBeUndefined();
      for (let n = 1; n <= 4; n++) {
        const current = informer.get(ns.name, 'before') ?? (await kube.get<ConfigMap>(path('before')));
        await kube.request('PATCH', path('before'), {
          body: { data: { n: String(n) } },
          contentType: mergePatch,
        });
        expect(current).toBeDefined();
        await new Promise((resolve) => setTimeout(resolve, 700));
      }
      await kube.request('POST', path(), {
        body: { apiVersion: 'v1', kind: 'ConfigMap', ...configMap('after', {}) },
      });
      await kube.request('DELETE', path('before'));
      await expect.poll(() => events.at(-1), { timeout: 10_000 }).toBe('delete before');
      expect(events).toEqual([
        'add before',
        'update before 1',
        'update before 2',
        'update before 3',
        'update before 4',
        'add after',
        'delete before',
      ]);
      expect(informer.list().map((o) => o.metadata.name)).toEqual(['after']);
    } finally {
      await informer.stop();
    }
  });

  it("fails to start with the API server's 404 for a kind it does not serve", async () => {
    const broken = new Informer(kube, '/apis/example.invalid/v1/things', {});
    await expect(broken.start()).rejects.toMatchObject({ code: 404 });
  });
});
