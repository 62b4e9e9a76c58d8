// BackupRequest: back up one application (database + document library) now. Field names are
// the seeds' (000 task 1.3, 001 section 3).
import { z } from 'zod';
import {
  BucketName,
  DnsLabel,
  KeyPrefix,
  kindSchema,
  Provider,
  requestStatusFields,
  Retention,
  State,
} from './common.ts';

export const DatabaseBackupSpec = z.strictObject({
  /** snapshot: the provider's native snapshot (RDS, Cloud SQL, Azure); dump: pg_dump. */
  type: z.enum(['snapshot', 'dump']).default('snapshot'),
  instanceId: z.string().min(1, 'is required: the database instance to back up'),
  retention: Retention.default('7d'),
});

export const DocumentLibraryBackupSpec = z.strictObject({
  sourceBucket: BucketName,
  destinationBucket: BucketName,
  /** Default: <projectId>/<environment>/<timestamp>/dl (see src/format/layout.ts). */
  destinationPrefix: KeyPrefix.optional(),
  /** Skip generated renditions (thumbnails, previews, adaptive media); they are re-created. */
  excludeGeneratedFiles: z.boolean().default(false),
});

export const BackupRequestSpec = z.strictObject({
  projectId: DnsLabel,
  environment: DnsLabel,
  /** When omitted: the project's configured provider, else aws. */
  provider: Provider.optional(),
  database: DatabaseBackupSpec,
  documentLibrary: DocumentLibraryBackupSpec,
  /** What deleting this request does to the stored backup: keep it (Retain) or remove it (Delete). */
  deletionPolicy: z.enum(['Retain', 'Delete']).default('Retain'),
});

export const BackupRequestStatus = z.strictObject({
  ...requestStatusFields,
  database: z
    .strictObject({
      snapshotId: z.string().optional(),
      /** Human-readable, as in the seed ("45.2 GB"). */
      size: z.string().optional(),
      status: State.optional(),
    })
    .optional(),
  documentLibrary: z
    .strictObject({
      objectCount: z.number().int().nonnegative().optional(),
      totalSize: z.string().optional(),
      status: State.optional(),
      manifestPath: z.string().optional(),
    })
    .optional(),
});

export const BackupRequest = kindSchema('BackupRequest', BackupRequestSpec, BackupRequestStatus);

export type BackupRequest = z.infer<typeof BackupRequest>;
export type BackupRequestInput = z.input<typeof BackupRequest>;
export type BackupRequestSpec = z.infer<typeof BackupRequestSpec>;
export type BackupRequestStatus = z.infer<typeof BackupRequestStatus>;
