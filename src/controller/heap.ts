// The controller's JavaScript heap. A controller whose data steps run in Jobs (`executor: job`)
// only reconciles: small JSON objects at a high rate. With V8's defaults its heap grows far past
// what it keeps alive (1,000 requests in flight: RSS 320–328 MB, live heap under 45 MB);
// `--optimize-for-size` makes V8 collect sooner and grow the heap less — 172–174 MB at the same
// peak, for 20–35 % more controller CPU (docs/performance.md, controller round 5). A controller
// that moves data itself (`executor: inProcess`) keeps V8's defaults: the flag cost the streamed
// copy 20–25 % more CPU. NODE_OPTIONS does not accept the flag, so it is set here, before the
// informers fill the heap.
import { setFlagsFromString } from 'node:v8';
import { ValidationError } from '../errors/index.ts';

/** Whether to favour a small heap: LC2_SMALL_HEAP=1/0 decides, else `executor: job` does. */
export function smallHeapWanted(executor: 'inProcess' | 'job', setting: string | undefined): boolean {
  if (setting === undefined || setting === '') return executor === 'job';
  if (setting === '1' || setting === '0') return setting === '1';
  throw new ValidationError(
    `LC2_SMALL_HEAP: "${setting}" is neither 1 nor 0; unset it to let controller.executor decide (job: small heap)`,
  );
}

/** Applies the choice to this process's V8 (once, before the controller starts); returns it. */
export function preferSmallHeap(
  executor: 'inProcess' | 'job',
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  const wanted = smallHeapWanted(executor, env.LC2_SMALL_HEAP);
  if (wanted) setFlagsFromString('--optimize-for-size');
  return wanted;
}
