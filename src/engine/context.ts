// What the engine needs from its caller (CLI, controller, worker): configuration, the history
// catalog, the object stores, a clock, a logger and a progress listener. No Kubernetes here.
import type { Catalog } from '../catalog/catalog.ts';
import type { Config } from '../config/config.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProgressListener } from './progress.ts';
import type { ObjectStore } from '../providers/types.ts';
import type { SnapshotProviders } from './databases.ts';

export interface EngineContext {
  config: Config;
  catalog: Catalog;
  /** The configured stores by name; the same name always gives the same instance. */
  stores: { get(name: string): ObjectStore };
  /** Native database snapshots per project (aws: RDS); default: opened from `config`. */
  snapshots?: SnapshotProviders;
  log: Logger;
  now?: () => Date;
  onProgress?: ProgressListener;
  /** Who asked (a user name, "controller", a schedule): recorded in the manifest. */
  initiator?: string;
  /** Tool version recorded in the manifest. */
  toolVersion?: string;
  /**
   * The controller's mode: an unreachable catalog is logged and the run goes on (the controller
   * archives the outcome later). The CLI leaves it off: there the catalog is part of the job.
   */
  tolerateCatalogOutage?: boolean;
  /** Aborts the work (Ctrl-C, shutdown): the step in flight stops and the run is recorded Failed. */
  signal?: AbortSignal;
}

export function nowOf(ctx: EngineContext): Date {
  return ctx.now?.() ?? new Date();
}

export function humanBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit] ?? 'B'}`;
}
