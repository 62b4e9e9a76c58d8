// What every request reconciler writes the same way: the Ready condition, a failure (reason
// from the error's class), and throttled progress.
import type { Condition, Progress } from '../../api/v1alpha1/common.ts';
import { IntegrityError, NotFoundError, PolicyError, ValidationError } from '../errors/index.ts';
import { humanDuration } from '../engine/units.ts';
import type { Logger } from '../observability/logger.ts';
import type { Resource, Resources } from './resources.ts';

/** Why a request failed, as a condition reason; `otherwise` for errors without a class. */
export function failureReason(err: unknown, otherwise: string): string {
  if (err instanceof ValidationError) return 'InvalidRequest';
  if (err instanceof PolicyError) return 'Forbidden';
  if (err instanceof NotFoundError) return 'NotFound';
  if (err instanceof IntegrityError) return 'IntegrityError';
  if (err instanceof Error && err.name === 'JobFailedError') return 'JobFailed';
  return otherwise;
}

export function readyCondition(
  status: Condition['status'],
  reason: string,
  message: string,
  generation?: number,
): Condition {
  return {
    type: 'Ready',
    status,
    reason,
    message: message.slice(0, 1000),
    lastTransitionTime: new Date().toISOString(),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
}

export interface FailureOptions {
  plural: string;
  started?: Date | undefined;
  /** The reason for errors without a class (BackupFailed, RestoreFailed). */
  otherwise: string;
}

export async function markFailed(
  resources: Resources,
  resource: Resource,
  err: unknown,
  options: FailureOptions,
): Promise<string> {
  const reason = failureReason(err, options.otherwise);
  const message = err instanceof Error ? err.message : String(err);
  const completed = new Date();
  const { generation } = resource.metadata;
  await resources.updateStatus(options.plural, resource.metadata, () => ({
    state: 'Failed',
    reason,
    message: message.slice(0, 4000),
    completionTime: completed.toISOString(),
    ...(options.started
      ? { duration: humanDuration((completed.getTime() - options.started.getTime()) / 1000) }
      : {}),
    observedGeneration: generation,
    conditions: [readyCondition('False', reason, message, generation)],
  }));
  resources.event(resource, 'Warning', reason, message);
  return reason;
}

/**
 * Writes status.progress at most every `intervalMs`, one write at a time, the first one interval
 * after the run started: a run shorter than that writes none (its InProgress and final statuses
 * say all there is, and each write is an API call).
 */
export function progressWriter(
  resources: Pick<Resources, 'updateStatus'>,
  target: { plural: string; resource: Resource; intervalMs: number },
  log: Logger,
): (p: Progress) => void {
  let last = Date.now();
  let writing = false;
  return (progress) => {
    const now = Date.now();
    if (writing || now - last < target.intervalMs) return;
    last = now;
    writing = true;
    resources
      .updateStatus(
        target.plural,
        target.resource.metadata,
        (current) => (current.status?.state === 'InProgress' ? { progress } : undefined),
        // progress is bookkeeping: it waits behind what answers new requests
        'low',
      )
      .catch((err: unknown) => {
        log.warn(`could not write progress: ${String(err)}`);
      })
      .finally(() => {
        writing = false;
      });
  };
}
