// The controller's view of the API server: read a resource fresh, write its status without
// ever moving a terminal state back (optimistic concurrency, conflicts retried on fresh state),
// and record Kubernetes Events. The only file that calls the custom-objects API.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { apiVersion, group, version } from '../../api/v1alpha1/common.ts';
import { httpCode } from './kube.ts';

export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    ownerReferences?: { kind: string; name: string; uid: string }[];
  };
  spec: unknown;
  status?: Record<string, unknown> & { state?: string };
}

export const terminalStates = new Set(['Succeeded', 'Failed']);

export class Resources {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;

  /** Removes secrets from what is written (status messages, Events); identity by default. */
  private readonly scrub: (text: string) => string;

  constructor(kc: KubeConfig, scrub: (text: string) => string = (text) => text) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.scrub = scrub;
  }

  /** A status with its messages (and its conditions' messages) scrubbed of secrets. */
  private scrubbed(status: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = { ...status };
    if (typeof out.message === 'string') out.message = this.scrub(out.message);
    if (Array.isArray(out.conditions)) {
      out.conditions = (out.conditions as Record<string, unknown>[]).map((c) =>
        typeof c.message === 'string' ? { ...c, message: this.scrub(c.message) } : c,
      );
    }
    return out;
  }

  async get(plural: string, namespace: string, name: string): Promise<Resource | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group,
        version,
        namespace,
        plural,
        name,
      })) as Resource;
    } catch (err) {
      if (httpCode(err) === 404) return undefined;
      throw err;
    }
  }

  /** The resources of a kind in a namespace that carry the given labels. */
  async list(plural: string, namespace: string, labels: Record<string, string>): Promise<Resource[]> {
    const labelSelector = Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const list = (await this.custom.listNamespacedCustomObject({
      group,
      version,
      namespace,
      plural,
      labelSelector,
    })) as { items: Resource[] };
    return list.items;
  }

  /**
   * Applies `next(current)` to the status of a resource that is not yet terminal. Returns the
   * written resource, or undefined when it is gone, terminal, or `next` returns undefined.
   */
  async updateStatus(
    plural: string,
    ref: { namespace: string; name: string },
    next: (current: Resource) => Record<string, unknown> | undefined,
  ): Promise<Resource | undefined> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const current = await this.get(plural, ref.namespace, ref.name);
      if (!current || terminalStates.has(current.status?.state ?? '')) return undefined;
      const status = next(current);
      if (status === undefined) return undefined;
      try {
        return (await this.custom.patchNamespacedCustomObjectStatus(
          {
            group,
            version,
            plural,
            namespace: ref.namespace,
            name: ref.name,
            // resourceVersion makes the merge patch conditional: a concurrent writer → 409
            body: {
              metadata: { resourceVersion: current.metadata.resourceVersion },
              status: this.scrubbed(status),
            },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        )) as Resource;
      } catch (err) {
        if (httpCode(err) !== 409) throw err;
      }
    }
    throw new Error(`status of ${plural} ${ref.namespace}/${ref.name}: too many conflicting writers`);
  }

  /**
   * Merge-patches metadata (finalizers, annotations) conditionally on the resourceVersion read;
   * false when the resource changed or went away meanwhile (the caller reconciles again).
   */
  async patchMetadata(
    plural: string,
    current: Resource,
    metadata: Pick<Resource['metadata'], 'finalizers' | 'annotations'>,
  ): Promise<boolean> {
    try {
      await this.custom.patchNamespacedCustomObject(
        {
          group,
          version,
          plural,
          namespace: current.metadata.namespace,
          name: current.metadata.name,
          body: { metadata: { resourceVersion: current.metadata.resourceVersion, ...metadata } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return true;
    } catch (err) {
      if (httpCode(err) === 409 || httpCode(err) === 404) return false;
      throw err;
    }
  }

  /** Deletes exactly the object read (uid and resourceVersion preconditions); false if it changed. */
  async delete(plural: string, current: Resource): Promise<boolean> {
    try {
      await this.custom.deleteNamespacedCustomObject({
        group,
        version,
        plural,
        namespace: current.metadata.namespace,
        name: current.metadata.name,
        body: {
          preconditions: { uid: current.metadata.uid, resourceVersion: current.metadata.resourceVersion },
        },
      });
      return true;
    } catch (err) {
      if (httpCode(err) === 409 || httpCode(err) === 404) return false;
      throw err;
    }
  }

  /** Records an Event on the resource; an Event that cannot be written is not worth failing for. */
  async event(
    resource: Resource,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const now = new Date();
    await this.core
      .createNamespacedEvent({
        namespace: resource.metadata.namespace,
        body: {
          metadata: { generateName: `${resource.metadata.name}.`, namespace: resource.metadata.namespace },
          involvedObject: {
            apiVersion,
            kind: resource.kind,
            name: resource.metadata.name,
            namespace: resource.metadata.namespace,
            uid: resource.metadata.uid,
          },
          type,
          reason,
          message: this.scrub(message).slice(0, 1000),
          source: { component: 'lc2-backup-controller' },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch(() => undefined);
  }
}
