// Shared pieces of the v1alpha1 kinds. Every object schema is strict: an unknown field is an
// error naming its path, because a misspelt field silently ignored is a backup that differs
// from what the user asked for.
import { z } from 'zod';

export const group = 'backup.liferay.cloud';
export const version = 'v1alpha1';
export const apiVersion = `${group}/${version}`;

export const providers = ['aws', 'gcp', 'azure', 'local'] as const;
export const Provider = z.enum(providers);
export type Provider = z.infer<typeof Provider>;

/** Lower-case DNS label: project ids and environments end up in names, keys and labels. */
export const DnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a lower-case DNS label (a-z, 0-9, "-"; e.g. "retail")');

/** S3/GCS/Azure-compatible bucket name (the strictest common subset). */
export const BucketName = z
  .string()
  .min(3)
  .max(63)
  .regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, 'must be a bucket name: 3-63 of a-z, 0-9, ".", "-"');

export const retentionPattern = /^\d+[dhm]$/;
export const Retention = z
  .string()
  .regex(retentionPattern, 'must match ^\\d+[dhm]$ (e.g. "7d", "12h", "30m")');

/** A key prefix inside a bucket: no leading "/", no empty or ".." segments. */
export const KeyPrefix = z
  .string()
  .min(1)
  .max(900)
  .refine(
    (p) =>
      !p.startsWith('/') &&
      p.split('/').every((s, i, all) => (s !== '' || i === all.length - 1) && s !== '..'),
    {
      error:
        'must be a relative key prefix like "retail/prd/20251109-143000/dl" (no leading "/", no empty or ".." segments)',
    },
  );

export const State = z.enum(['Pending', 'InProgress', 'Succeeded', 'Failed']);
export type State = z.infer<typeof State>;

/** A Kubernetes metav1.Condition. */
export const Condition = z.strictObject({
  type: z.string().min(1),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().optional(),
  message: z.string().optional(),
  lastTransitionTime: z.string().optional(),
  observedGeneration: z.number().int().optional(),
});
export type Condition = z.infer<typeof Condition>;

/** Progress of long work, updated at a bounded rate. */
export const Progress = z.strictObject({
  phase: z.string().optional(),
  bytesDone: z.number().int().nonnegative().optional(),
  bytesTotal: z.number().int().nonnegative().optional(),
  objectsDone: z.number().int().nonnegative().optional(),
  objectsTotal: z.number().int().nonnegative().optional(),
  bytesPerSecond: z.number().nonnegative().optional(),
  etaSeconds: z.number().nonnegative().optional(),
});
export type Progress = z.infer<typeof Progress>;

/** The status fields every request kind shares: where it is, why, when, and how far. */
export const requestStatusFields = {
  state: State.optional(),
  backupId: z.string().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
  startTime: z.string().optional(),
  completionTime: z.string().optional(),
  /** Start to completion, human-readable ("2m13s"), for `kubectl get`. */
  duration: z.string().optional(),
  observedGeneration: z.number().int().optional(),
  conditions: z.array(Condition).optional(),
  progress: Progress.optional(),
};

/** Object metadata as the API server returns it: only the fields we read are checked. */
export const ObjectMeta = z.looseObject({
  name: z.string().min(1).max(253).optional(),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  creationTimestamp: z.string().optional(),
  generation: z.number().int().optional(),
});

export function kindSchema<K extends string, S extends z.ZodType, T extends z.ZodType>(
  kind: K,
  spec: S,
  status: T,
) {
  return z.strictObject({
    apiVersion: z.literal(apiVersion, { error: `must be "${apiVersion}"` }),
    kind: z.literal(kind, { error: `must be "${kind}"` }),
    metadata: ObjectMeta.default({}),
    spec,
    status: status.optional(),
  });
}
