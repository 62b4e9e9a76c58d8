// What the controller reports to its metrics as requests finish: counts by state and project,
// failures by reason, durations by component, sizes and bytes copied of successful backups.
import type { BackupResult } from '../engine/backup/backup.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics, RequestKind } from '../observability/metrics.ts';
import type { Resource } from './resources.ts';

const seconds = (from: string, to: string): number => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);

/** A backup that this process ran to success. */
export function reportBackup(metrics: Metrics | undefined, project: string, result: BackupResult): void {
  if (metrics === undefined) return;
  const { header } = result;
  const db = header.database;
  const dl = header.documentLibrary;
  metrics.setBackupSize(project, 'database', db.size);
  metrics.setBackupSize(project, 'documentLibrary', dl.totalSize);
  metrics.setBackupSize(project, 'total', db.size + dl.totalSize);
  if (result.adopted) return; // its data moved in an earlier run, already counted there
  metrics.observeDuration('database', seconds(db.startedAt, db.completedAt));
  metrics.observeDuration('documentLibrary', seconds(db.completedAt, header.completedAt));
  metrics.observeDuration('total', result.durationMs / 1000);
  metrics.addCopied(project, { bytes: dl.totalSize, objects: dl.objectCount });
}

/** A request reached Succeeded or Failed (read from its status). */
export function reportFinished(metrics: Metrics | undefined, kind: RequestKind, resource: Resource): void {
  const state = resource.status?.state;
  if (metrics === undefined || (state !== 'Succeeded' && state !== 'Failed')) return;
  const project = (resource.spec as { projectId?: unknown }).projectId;
  const reason = resource.status?.reason;
  const completed = resource.status?.completionTime;
  metrics.requestFinished({
    kind,
    state,
    project: typeof project === 'string' ? project : 'unknown',
    ...(state === 'Failed' && typeof reason === 'string' ? { reason } : {}),
    ...(typeof completed === 'string' ? { at: new Date(completed) } : {}),
  });
}

/** The engine's logger for one request: every line carries its identity when the logger can. */
export function requestLogger(
  log: Logger,
  bindings: { namespace: string; name: string; backupId?: string },
): Logger {
  const withChild = log as Logger & { child?: (b: Record<string, string>) => Logger };
  return typeof withChild.child === 'function' ? withChild.child(bindings) : log;
}
