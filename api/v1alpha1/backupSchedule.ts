// BackupSchedule: a cron schedule + a BackupRequest template + a retention policy.
import { z } from 'zod';
import { Condition, kindSchema } from './common.ts';
import { BackupRequestSpec } from './backupRequest.ts';

// Five fields, each "*", a number, a range, a list or a step; names (MON, JAN) are allowed.
const cronField = String.raw`(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*`;
export const cronPattern = new RegExp(`^${cronField}( ${cronField}){4}$`);

export const RetentionPolicy = z.strictObject({
  /** Grandfather-father-son: how many of the newest daily/weekly/monthly backups to keep. */
  keepLast: z.number().int().min(1).optional(),
  keepDaily: z.number().int().min(0).optional(),
  keepWeekly: z.number().int().min(0).optional(),
  keepMonthly: z.number().int().min(0).optional(),
});

export const BackupScheduleSpec = z.strictObject({
  schedule: z
    .string()
    .regex(cronPattern, 'must be a five-field cron expression like "0 2 * * *"')
    .default('0 2 * * *'),
  /** IANA time zone of the schedule (CronJob timeZone), e.g. "Europe/Madrid"; default UTC. */
  timeZone: z
    .string()
    .regex(
      /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/,
      'must be an IANA time zone such as "Europe/Madrid"',
    )
    .optional(),
  suspend: z.boolean().default(false),
  template: z.strictObject({ spec: BackupRequestSpec }),
  /** Finished BackupRequests of this schedule kept in the API server (the catalog keeps all). */
  successfulHistoryLimit: z.number().int().min(0).max(100).default(3),
  failedHistoryLimit: z.number().int().min(0).max(100).default(1),
  retention: RetentionPolicy.default({ keepDaily: 7, keepWeekly: 4, keepMonthly: 6 }),
});

export const BackupScheduleStatus = z.strictObject({
  lastScheduleTime: z.string().optional(),
  lastSuccessfulTime: z.string().optional(),
  lastBackupId: z.string().optional(),
  /** The CronJob that fires this schedule. */
  cronJob: z.string().optional(),
  observedGeneration: z.number().int().optional(),
  conditions: z.array(Condition).optional(),
});

export const BackupSchedule = kindSchema('BackupSchedule', BackupScheduleSpec, BackupScheduleStatus);
export type BackupSchedule = z.infer<typeof BackupSchedule>;
