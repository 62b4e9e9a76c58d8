// RestoreRequest: take a recorded backup back as one unit. For now only into new targets (a
// safe clone); in-place restore needs approval, a safety backup and a scale-down, and comes later.
import { z } from 'zod';
import { BucketName, DnsLabel, KeyPrefix, kindSchema, requestStatusFields } from './common.ts';

export const RestoreSource = z
  .strictObject({
    /** The BackupRequest whose backup to restore (same namespace). */
    backupRequestName: z.string().min(1).optional(),
    /** Or the backup id, e.g. retail-prd-backup-20251109-143000. */
    backupId: z.string().min(1).optional(),
  })
  .refine((s) => (s.backupRequestName === undefined) !== (s.backupId === undefined), {
    error: 'set exactly one of backupRequestName or backupId',
  });

export const RestoreTarget = z.strictObject({
  /** in-place is refused for now; new restores into a database and bucket that are not the source. */
  mode: z.enum(['new', 'in-place']).default('new'),
  database: z.strictObject({
    /** The instance to restore into (snapshot: the new instance's id; dump: a configured instance). */
    instanceId: z.string().min(1),
    /** dump restores: the database to create on that instance. */
    databaseName: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a PostgreSQL identifier (a-z, 0-9, "_")')
      .optional(),
  }),
  documentLibrary: z.strictObject({
    bucket: BucketName,
    prefix: KeyPrefix.optional(),
  }),
});

export const RestoreRequestSpec = z.strictObject({
  projectId: DnsLabel,
  environment: DnsLabel,
  source: RestoreSource,
  target: RestoreTarget,
});

export const RestoreRequestStatus = z.strictObject({
  ...requestStatusFields,
  restoreId: z.string().optional(),
});

export const RestoreRequest = kindSchema('RestoreRequest', RestoreRequestSpec, RestoreRequestStatus);
export type RestoreRequest = z.infer<typeof RestoreRequest>;
export type RestoreRequestSpec = z.infer<typeof RestoreRequestSpec>;
