// How the CLI talks: progress as one redrawn line on a terminal and as plain lines (at most one
// every few seconds) otherwise; results as text or, with --json, as one JSON document on stdout.
import type { Progress } from '../../api/v1alpha1/common.ts';
import { humanBytes } from '../engine/context.ts';
import { humanDuration } from '../engine/units.ts';

export function formatProgress(p: Progress): string {
  const parts = [p.phase ?? ''];
  if (p.objectsTotal !== undefined) parts.push(`${p.objectsDone ?? 0}/${p.objectsTotal} objects`);
  const bytes =
    p.bytesTotal !== undefined
      ? `${humanBytes(p.bytesDone ?? 0)}/${humanBytes(p.bytesTotal)}`
      : humanBytes(p.bytesDone ?? 0);
  parts.push(bytes);
  if (p.bytesTotal !== undefined && p.bytesTotal > 0)
    parts.push(`${Math.floor(((p.bytesDone ?? 0) / p.bytesTotal) * 100)}%`);
  if (p.bytesPerSecond !== undefined) parts.push(`${humanBytes(p.bytesPerSecond)}/s`);
  if (p.etaSeconds !== undefined && p.bytesDone !== p.bytesTotal)
    parts.push(`ETA ${humanDuration(p.etaSeconds)}`);
  return parts.join('  ');
}

export function progressPrinter(
  stream: NodeJS.WriteStream,
  quiet: boolean,
): { onProgress: (p: Progress) => void; done: () => void } {
  if (quiet) return { onProgress: () => undefined, done: () => undefined };
  if (stream.isTTY) {
    let drawn = false;
    return {
      onProgress: (p) => {
        stream.write(`\r\x1b[2K${formatProgress(p)}`);
        drawn = true;
      },
      done: () => {
        if (drawn) stream.write('\n');
        drawn = false;
      },
    };
  }
  let last = 0;
  let lastPhase = '';
  return {
    onProgress: (p) => {
      const now = Date.now();
      const finished = p.bytesTotal !== undefined && p.bytesDone === p.bytesTotal;
      if (now - last < 5000 && p.phase === lastPhase && !finished) return;
      last = now;
      lastPhase = p.phase ?? '';
      stream.write(`progress: ${formatProgress(p)}\n`);
    },
    done: () => undefined,
  };
}
