// The catalog's records and inputs, camelCase here and snake_case in SQL (see rows.ts).
// A column that holds NULL is `null` in a record; an input field left out is not written.

/**
 * Pending → InProgress → Succeeded | Failed; ManifestMissing: see `Catalog.markManifestMissing`;
 * Deleted: see `Catalog.markDeleted`.
 */
export type BackupState = 'Pending' | 'InProgress' | 'Succeeded' | 'Failed' | 'ManifestMissing' | 'Deleted';
export type RestoreState = 'Pending' | 'InProgress' | 'Succeeded' | 'Failed';
export type DbBackupType = 'snapshot' | 'dump';

export interface BackupRecord {
  /** Row id (UUID). */
  id: string;
  /** The backup's identity, e.g. `retail-prd-backup-20251109-143000`. */
  backupId: string;
  crName: string | null;
  crNamespace: string | null;
  projectId: string;
  environment: string;
  provider: string | null;
  state: BackupState;
  startTime: Date | null;
  completionTime: Date | null;
  durationMs: number | null;
  failureReason: string | null;
  dbType: DbBackupType | null;
  dbInstanceId: string | null;
  dbSnapshotId: string | null;
  dbSnapshotSizeBytes: number | null;
  dlSourceBucket: string | null;
  dlDestinationBucket: string | null;
  dlDestinationPrefix: string | null;
  dlObjectCount: number | null;
  dlTotalSizeBytes: number | null;
  dlManifestPath: string | null;
  manifestChecksum: string | null;
  createdAt: Date;
  updatedAt: Date;
  archivedAt: Date | null;
}

/** What is known when a backup starts (or is queued). */
export interface BackupStart {
  backupId: string;
  projectId: string;
  environment: string;
  /** The BackupRequest's name and namespace; absent for a standalone CLI run. */
  crName?: string | undefined;
  crNamespace?: string | undefined;
  provider?: string | undefined;
  dbType?: DbBackupType | undefined;
  dbInstanceId?: string | undefined;
  dlSourceBucket?: string | undefined;
  dlDestinationBucket?: string | undefined;
  dlDestinationPrefix?: string | undefined;
  dlManifestPath?: string | undefined;
  /** InProgress (default) or Pending: queued behind the project's concurrency limit. */
  state?: 'Pending' | 'InProgress' | undefined;
  /** Defaults to now when the backup becomes InProgress. */
  startTime?: Date | undefined;
}

/** Facts learnt while a backup runs; each call adds to the earlier ones. */
export interface BackupProgress {
  dbSnapshotId?: string | undefined;
  dbSnapshotSizeBytes?: number | undefined;
  dlObjectCount?: number | undefined;
  dlTotalSizeBytes?: number | undefined;
  dlManifestPath?: string | undefined;
}

export interface BackupSuccess extends BackupProgress {
  manifestChecksum?: string | undefined;
  /** Defaults to now. */
  completionTime?: Date | undefined;
  /** Defaults to completionTime − startTime. */
  durationMs?: number | undefined;
}

export interface BackupFilter {
  projectId?: string | undefined;
  environment?: string | undefined;
  state?: BackupState | undefined;
  /** 1…10000, default 100. */
  limit?: number | undefined;
}

/**
 * The fields of a backup manifest that the catalog keeps (`catalog rebuild` reads them from
 * the manifests in the buckets). A manifest exists only for a completed backup.
 */
export interface ManifestSummary {
  backupId: string;
  projectId: string;
  environment: string;
  crName?: string | undefined;
  crNamespace?: string | undefined;
  provider?: string | undefined;
  startTime?: Date | undefined;
  completionTime: Date;
  durationMs?: number | undefined;
  dbType?: DbBackupType | undefined;
  dbInstanceId?: string | undefined;
  dbSnapshotId?: string | undefined;
  dbSnapshotSizeBytes?: number | undefined;
  dlSourceBucket?: string | undefined;
  dlDestinationBucket?: string | undefined;
  dlDestinationPrefix?: string | undefined;
  dlObjectCount?: number | undefined;
  dlTotalSizeBytes?: number | undefined;
  /** Where the manifest is, e.g. `s3://liferay-backups/retail/prd/20251109-143000/manifest.json`. */
  manifestPath: string;
  /** Hex SHA-256 of the manifest. */
  manifestChecksum: string;
}

export interface ManifestUpsertResult {
  /**
   * inserted: the catalog did not know the backup; updated: its row now holds the manifest's
   * facts and is Succeeded; unchanged: it already did; keptFailed: the row records a failure,
   * which a manifest does not overturn (e.g. verification failed after the manifest was written).
   */
  outcome: 'inserted' | 'updated' | 'unchanged' | 'keptFailed';
  backup: BackupRecord;
}

export interface RestoreRecord {
  id: string;
  restoreId: string;
  backupId: string;
  crName: string | null;
  crNamespace: string | null;
  projectId: string;
  environment: string;
  targetDbInstanceId: string | null;
  targetDatabase: string | null;
  targetBucket: string | null;
  targetPrefix: string | null;
  state: RestoreState;
  startTime: Date | null;
  completionTime: Date | null;
  durationMs: number | null;
  failureReason: string | null;
  restoredObjectCount: number | null;
  restoredTotalSizeBytes: number | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface RestoreStart {
  restoreId: string;
  backupId: string;
  projectId: string;
  environment: string;
  crName?: string | undefined;
  crNamespace?: string | undefined;
  targetDbInstanceId?: string | undefined;
  targetDatabase?: string | undefined;
  targetBucket?: string | undefined;
  targetPrefix?: string | undefined;
  state?: 'Pending' | 'InProgress' | undefined;
  startTime?: Date | undefined;
}

export interface RestoreProgress {
  restoredObjectCount?: number | undefined;
  restoredTotalSizeBytes?: number | undefined;
}

export interface RestoreSuccess extends RestoreProgress {
  completionTime?: Date | undefined;
  durationMs?: number | undefined;
}

export interface RestoreFilter {
  projectId?: string | undefined;
  environment?: string | undefined;
  backupId?: string | undefined;
  state?: RestoreState | undefined;
  /** 1…10000, default 100. */
  limit?: number | undefined;
}
