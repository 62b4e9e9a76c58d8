// The few fields of built-in kinds lc2-backup reads or writes (not the whole of each schema).
import { withoutManagedFields, type KubeObject } from './informer.ts';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { apiVersion?: string; kind: string; name: string; uid: string; controller?: boolean }[];
}

export interface Lease extends KubeObject {
  metadata: ObjectMeta;
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    /** MicroTime: RFC 3339 with six fractional digits (see microTime). */
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/**
 * A MicroTime (Lease times) wants six fractional digits; a JavaScript ISO string has three. A
 * string read back from the API server is already in the format and passes unchanged.
 */
export function microTime(at: Date | string = new Date()): string {
  if (typeof at === 'string' && /\.\d{6}Z$/.test(at)) return at;
  const date = typeof at === 'string' ? new Date(at) : at;
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Whether resourceVersion `a` is newer than `b`. Versions are opaque to clients, but the API
 * server's (etcd revisions) are decimal integers; anything else is never called newer.
 */
export function isNewer(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || !decimal.test(a) || !decimal.test(b)) return false;
  // decimals of one length compare as text, and without leading zeros the longer is larger (no
  // BigInt: this runs on every read of a cached object that this process also wrote)
  if (a.length === b.length) return a > b;
  if (a[0] !== '0' && b[0] !== '0') return a.length > b.length;
  return BigInt(a) > BigInt(b);
}

const decimal = /^\d+$/;

/**
 * What this process wrote (or read) of some objects, until an informer's cache shows that
 * version or a newer one: `newest` answers the fresher of the two, so a conditional write starts
 * from our own last write instead of a stale cached version (or a GET).
 */
export class OwnWrites<T extends { metadata: { resourceVersion?: string } }> {
  readonly #objects = new Map<string, T>();

  newest(key: string, cached: T | undefined): T | undefined {
    const ours = this.#objects.get(key);
    if (ours === undefined) return cached;
    if (cached !== undefined && !isNewer(ours.metadata.resourceVersion, cached.metadata.resourceVersion)) {
      this.#objects.delete(key); // the cache has caught up
      return cached;
    }
    return ours;
  }

  remember(key: string, object: T): T {
    this.#objects.set(key, withoutManagedFields(object as T & KubeObject));
    return object;
  }

  forget(key: string): void {
    this.#objects.delete(key);
  }

  /** The keys of the objects written and not yet caught up with (or forgotten). */
  keys(): string[] {
    return [...this.#objects.keys()];
  }
}
