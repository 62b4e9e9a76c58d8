// What a test file uses to reach the test bed: its own database, bucket and namespace, named
// uniquely so files run in parallel and re-runs never collide, and removed afterwards.
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectVersionsCommand,
  S3Client,
  type CreateBucketCommandInput,
} from '@aws-sdk/client-s3';
import { CoreV1Api, KubeConfig, type CoreV1Event } from '@kubernetes/client-node';
import { KubeClient } from '../../src/kube/client.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { crdFiles } from '../../api/v1alpha1/crd.ts';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { kubeRequest, type TestbedInfo } from './testbed.ts';

export function testbed(): TestbedInfo {
  return inject('testbed');
}

/** A DNS-1123 name (valid as bucket, database and namespace name) unique to this file and run. */
export function uniqueName(prefix: string): string {
  const file = basename(expect.getState().testPath ?? 'test').replace(/\.test\.ts$/, '');
  const slug = `${prefix}-${file}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, 40)
    .replace(/-+$/, '');
  return `${slug}-${randomBytes(4).toString('hex')}`;
}

export function s3Client(info = testbed()): S3Client {
  return new S3Client({
    endpoint: info.s3.endpoint,
    region: info.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: info.s3.accessKeyId, secretAccessKey: info.s3.secretAccessKey },
  });
}

export function kubeConfig(info = testbed()): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(info.kube.kubeconfig);
  return kc;
}

/** lc2-backup's own Kubernetes client for the test bed's API server (what the controller uses). */
export function kubeClient(info = testbed()): KubeClient {
  return KubeClient.load({ kubeconfig: info.kube.kubeconfig });
}

export function pgConfig(database: string, info = testbed()): pg.ClientConfig {
  const { host, port, user, password } = info.postgres;
  return { host, port, user, password, database };
}

/** Runs `fn` with a connected client, always closing it. */
export async function withPg<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(pgConfig(database));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A database of this file's own, created before its tests and dropped after them. */
export function useDatabase(prefix = 'db'): { readonly name: string } {
  const holder = { name: '' };
  beforeAll(async () => {
    holder.name = uniqueName(prefix).replace(/-/g, '_');
    await withPg('postgres', (c) => c.query(`CREATE DATABASE "${holder.name}"`));
  });
  afterAll(async () => {
    if (holder.name !== '')
      await withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS "${holder.name}" WITH (FORCE)`));
  });
  return holder;
}

/** Empties a bucket (every version, so Object Lock-free buckets can go) and deletes it. */
export async function deleteBucket(s3: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    const ids = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
      Key: v.Key,
      VersionId: v.VersionId,
    }));
    if (ids.length === 0) break;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: ids, Quiet: true } }));
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/** A MinIO bucket of this file's own. */
export function useBucket(
  prefix = 'bkt',
  options: Partial<CreateBucketCommandInput> = {},
): { readonly name: string } {
  const holder = { name: '' };
  beforeAll(async () => {
    holder.name = uniqueName(prefix);
    await s3Client().send(new CreateBucketCommand({ ...options, Bucket: holder.name }));
  });
  afterAll(async () => {
    if (holder.name !== '') await deleteBucket(s3Client(), holder.name);
  });
  return holder;
}

/** A Kubernetes namespace of this file's own. */
export function useNamespace(prefix = 'ns'): { readonly name: string } {
  const holder = { name: '' };
  beforeAll(async () => {
    holder.name = uniqueName(prefix);
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: holder.name } } });
  });
  afterAll(async () => {
    if (holder.name !== '')
      await kubeConfig().makeApiClient(CoreV1Api).deleteNamespace({ name: holder.name });
  });
  return holder;
}

/** Installs (or updates) the generated CRDs and waits until the API server serves them. */
export async function installCrds(): Promise<void> {
  const { server, token } = testbed().kube;
  for (const text of Object.values(crdFiles())) {
    const body = parseYaml(text) as { metadata: { name: string } };
    const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${body.metadata.name}`;
    const applied = await kubeRequest(server, token, {
      method: 'PATCH',
      path: `${path}?fieldManager=lc2-backup-tests&force=true`,
      headers: { 'content-type': 'application/apply-patch+yaml' },
      body,
    });
    if (applied.status >= 300)
      throw new Error(`applying CRD ${body.metadata.name}: ${applied.status} ${applied.body}`);
    for (let i = 0; ; i++) {
      const got = JSON.parse((await kubeRequest(server, token, { path })).body) as {
        status?: { conditions?: { type: string; status: string }[] };
      };
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 100) throw new Error(`CRD ${body.metadata.name} not Established after 10 s`);
      await sleep(100);
    }
  }
}

/**
 * The Events in a namespace (of one object, when `name` is given) once every reason in `reasons`
 * is among them: the controller posts Events in the background, so they can follow the status
 * they report by a moment. Fails after `timeoutMs`, naming the reasons seen.
 */
export async function eventsWith(
  namespace: string,
  reasons: string[],
  options: { name?: string; timeoutMs?: number } = {},
): Promise<CoreV1Event[]> {
  const api = kubeConfig().makeApiClient(CoreV1Api);
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const list = await api.listNamespacedEvent({
      namespace,
      ...(options.name === undefined ? {} : { fieldSelector: `involvedObject.name=${options.name}` }),
    });
    const seen = new Set(list.items.map((e) => e.reason));
    if (reasons.every((r) => seen.has(r))) return list.items;
    if (Date.now() > deadline)
      throw new Error(
        `Events ${reasons.join(', ')} not all posted in ${namespace}; seen: ${[...seen].join(', ')}`,
      );
    await sleep(100);
  }
}

/** The message of a Kubernetes Status error thrown by client-node. */
export function statusMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  try {
    return (JSON.parse(typeof body === 'string' ? body : '') as { message?: string }).message ?? String(err);
  } catch {
    return String(err);
  }
}
