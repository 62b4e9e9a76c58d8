// Kubernetes Events, posted in the background a few at a time. An Event is best effort (one
// that cannot be written is not worth failing a request for), so it never sits on a request's
// path: under a burst the status writes and Lease takes that decide how soon a request moves
// go first, and the Events follow at whatever pace the API server has left. Each Event carries
// the time it happened, not the time it was posted.
import { apiVersion } from '../../api/v1alpha1/common.ts';
import type { KubeClient } from '../kube/client.ts';
import { eventPath } from '../kube/paths.ts';
import type { Resource } from './resources.ts';

/** Events posted at once; the rest wait in order. */
const inFlightLimit = 4;
/** Events kept waiting at most; beyond, the oldest are dropped (and counted). */
const queueLimit = 10_000;

interface PendingEvent {
  namespace: string;
  body: Record<string, unknown>;
}

export class EventRecorder {
  private readonly kube: KubeClient;
  private readonly component: string;
  private readonly queue: PendingEvent[] = [];
  private inFlight = 0;
  private idle: (() => void)[] = [];

  constructor(kube: KubeClient, component = 'lc2-backup-controller') {
    this.kube = kube;
    this.component = component;
  }

  /** Queues an Event on the resource (its message already scrubbed of secrets). */
  record(resource: Resource, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const now = new Date().toISOString();
    const { namespace, name, uid } = resource.metadata;
    // best effort: past the limit the oldest waiting Event gives way
    if (this.queue.length >= queueLimit) this.queue.shift();
    this.queue.push({
      namespace,
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${name}.`, namespace },
        involvedObject: { apiVersion, kind: resource.kind, name, namespace, uid },
        type,
        reason,
        message: message.slice(0, 1000),
        source: { component: this.component },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
    this.pump();
  }

  /** Resolves once every Event queued so far was posted (or refused). */
  flush(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    while (this.inFlight < inFlightLimit) {
      const next = this.queue.shift();
      if (next === undefined) break;
      this.inFlight++;
      void this.kube
        .request('POST', eventPath(next.namespace), { body: next.body, priority: 'low' })
        .catch(() => undefined)
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
    if (this.inFlight === 0 && this.queue.length === 0) {
      const waiting = this.idle;
      this.idle = [];
      for (const resolve of waiting) resolve();
    }
  }
}
