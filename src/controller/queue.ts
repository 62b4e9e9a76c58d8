// A keyed work queue: at most one reconcile per key at a time (a key added while it runs is
// run again afterwards), a bounded number of keys in flight, delayed re-adds, and per-key
// exponential backoff with jitter for failures (reset on success).
export type Reconcile = (key: string) => Promise<{ requeueAfterMs?: number } | undefined>;

export interface QueueOptions {
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onError?: (key: string, err: unknown, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly reconcile: Reconcile;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly onError: QueueOptions['onError'];
  private readonly ready: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(reconcile: Reconcile, options: QueueOptions = {}) {
    this.reconcile = reconcile;
    this.concurrency = options.concurrency ?? 4;
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.onError = options.onError;
  }

  /** Queues a key now, or after `delayMs` (an earlier pending delay for the key wins). */
  add(key: string, delayMs = 0): void {
    if (this.stopped) return;
    if (delayMs > 0) {
      if (this.timers.has(key)) return;
      const timer = setTimeout(() => {
        this.timers.delete(key);
        this.add(key);
      }, delayMs);
      timer.unref();
      this.timers.set(key, timer);
      return;
    }
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.ready.push(key);
    this.pump();
  }

  get size(): number {
    return this.ready.length + this.running.size;
  }

  /** Stops taking work and waits for the reconciles in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift() ?? '';
      this.queued.delete(key);
      this.running.add(key);
      const run = this.run(key).finally(() => {
        this.inFlight.delete(run);
      });
      this.inFlight.add(run);
    }
  }

  private async run(key: string): Promise<void> {
    try {
      const result = await this.reconcile(key);
      this.failures.delete(key);
      if (result?.requeueAfterMs !== undefined) this.add(key, result.requeueAfterMs);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (n - 1));
      const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
      this.onError?.(key, err, delay);
      this.add(key, delay);
    } finally {
      this.running.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
