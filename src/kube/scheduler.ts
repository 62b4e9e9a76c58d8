// The order in which API calls go out. The API server's latency grows with the calls in flight
// (measured on the test bed: 34 ms at the median with 12 in flight, 220 ms with 64, for the same
// throughput), so a client gains nothing by sending more at once than the server works on; what
// waits should wait here, where the calls that decide how soon a new request gets its first answer
// (its first status, the slot it takes, InProgress) can go before bookkeeping (a finished run's
// status, progress, Events). As the API server's priority and fairness does between clients,
// within one client.

/**
 * `urgent`: the next call of a chain that already waited its turn at high (a new request's
 * InProgress after its slot was taken), so that it does not queue a second time behind the
 * first calls that came in meanwhile.
 */
export type Priority = 'urgent' | 'high' | 'normal' | 'low';

/** After this many calls of a higher priority in a row, one that waits below goes (no starvation). */
const fairnessEvery = 8;

export class CallScheduler {
  readonly #limit: number;
  #inFlight = 0;
  #inARow = 0;
  readonly #waiting: Record<Priority, (() => void)[]> = { urgent: [], high: [], normal: [], low: [] };

  /** `limit`: calls in flight at most. */
  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`API calls in flight: ${limit} is not a whole number ≥ 1`);
    }
    this.#limit = limit;
  }

  /** Calls in flight and waiting, for metrics and tests. */
  get load(): { inFlight: number; waiting: number } {
    const { urgent, high, normal, low } = this.#waiting;
    return { inFlight: this.#inFlight, waiting: urgent.length + high.length + normal.length + low.length };
  }

  /** Runs `call` once a place is free, before the calls of lower priority that wait. */
  async run<T>(priority: Priority, call: () => Promise<T>): Promise<T> {
    if (this.#inFlight < this.#limit) this.#inFlight++;
    else await new Promise<void>((resolve) => this.#waiting[priority].push(resolve));
    try {
      return await call();
    } finally {
      this.#release();
    }
  }

  /** Hands the place on to the next call (it stays counted in flight), or frees it. */
  #release(): void {
    const next = this.#next();
    if (next === undefined) this.#inFlight--;
    else next();
  }

  #next(): (() => void) | undefined {
    const { urgent, high, normal, low } = this.#waiting;
    const below = normal.length + low.length;
    if (urgent.length + high.length > 0 && (below === 0 || this.#inARow < fairnessEvery)) {
      this.#inARow++;
      return urgent.shift() ?? high.shift();
    }
    this.#inARow = 0;
    return normal.shift() ?? low.shift() ?? urgent.shift() ?? high.shift();
  }
}
