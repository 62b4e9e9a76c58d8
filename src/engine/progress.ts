// Progress of long work: objects and bytes done/total, a smoothed rate and an ETA, reported at
// a bounded rate (every `intervalMs`) so a million small objects do not mean a million updates.
import type { Progress } from '../../api/v1alpha1/common.ts';

export type ProgressListener = (progress: Progress) => void;

export class ProgressTracker {
  private readonly started = Date.now();
  private lastEmit = 0;
  private bytesDone = 0;
  private objectsDone = 0;
  private bytesTotal: number | undefined;
  private objectsTotal: number | undefined;
  private readonly phase: string;
  private readonly listener: ProgressListener | undefined;
  private readonly intervalMs: number;

  constructor(phase: string, listener: ProgressListener | undefined, intervalMs = 500) {
    this.phase = phase;
    this.listener = listener;
    this.intervalMs = intervalMs;
  }

  setTotals(objects: number | undefined, bytes: number | undefined): void {
    this.objectsTotal = objects;
    this.bytesTotal = bytes;
    this.emit(true);
  }

  add(objects: number, bytes: number): void {
    this.objectsDone += objects;
    this.bytesDone += bytes;
    this.emit(false);
  }

  /** Sets the absolute byte count (for streams that report a running total). */
  setBytes(bytes: number): void {
    this.bytesDone = bytes;
    this.emit(false);
  }

  snapshot(): Progress {
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = this.bytesDone / seconds;
    const progress: Progress = {
      phase: this.phase,
      bytesDone: this.bytesDone,
      objectsDone: this.objectsDone,
      bytesPerSecond: Math.round(rate),
    };
    if (this.bytesTotal !== undefined) {
      progress.bytesTotal = this.bytesTotal;
      if (rate > 0) progress.etaSeconds = Math.max(0, Math.round((this.bytesTotal - this.bytesDone) / rate));
    }
    if (this.objectsTotal !== undefined) progress.objectsTotal = this.objectsTotal;
    return progress;
  }

  finish(): Progress {
    this.emit(true);
    return this.snapshot();
  }

  private emit(force: boolean): void {
    if (this.listener === undefined) return;
    const now = Date.now();
    if (!force && now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    this.listener(this.snapshot());
  }
}
