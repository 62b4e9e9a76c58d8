// The bench's own watches (BackupRequests and the slot Leases), read on a worker thread. The API
// server gives each watcher a buffer of about ten events and closes a watcher that has not taken
// them when the next are dispatched — after waiting for it, which holds back every other watcher
// of the kind, the controller's among them (`apiserver_terminated_watchers_total`). Read on the
// bench's main thread, busy with its 50 creates in flight, the bench's watch was that slow
// watcher: 13–20 closes per run, and the controller's watch delivery late by as much again
// (docs/performance.md, round 8). On this thread the socket is read as soon as data arrives, each
// event is stamped with the time it arrived, and the main thread takes them when it is free.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { httpCode, KubeClient, KubeError } from '../src/kube/client.ts';

export interface WatchedEvent {
  /** Which watch (the index of its path). */
  watch: number;
  /** When the event arrived (ms since the epoch), on this thread's clock. */
  at: number;
  object: unknown;
}

interface Setup {
  kubeconfig: string;
  paths: string[];
}

/** Watches `path` until stopped, resuming from the last version after the server ends it. */
async function keepWatching(kube: KubeClient, path: string, onEvent: (object: unknown) => void) {
  let resourceVersion: string | undefined;
  for (;;) {
    await kube
      .watch<{ metadata?: { resourceVersion?: string } }>(
        path,
        { allowWatchBookmarks: true, ...(resourceVersion === undefined ? {} : { resourceVersion }) },
        (event) => {
          if (event.type === 'ERROR') {
            // a Status in the stream (410 Gone when the version is too old): fail this watch
            const status = event.object as { code?: number; message?: string };
            throw new KubeError(`watch ${path}: ${status.message ?? 'error'}`, status.code ?? 500);
          }
          resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion;
          if (event.type !== 'BOOKMARK') onEvent(event.object);
        },
      )
      .catch((err: unknown) => {
        process.stderr.write(`controller-scale: watch of ${path} failed (${String(err)}); resuming\n`);
        // 410 Gone: the version is too old to resume from; start again from the current state
        if (httpCode(err) === 410) resourceVersion = undefined;
        return new Promise((resolve) => setTimeout(resolve, 500));
      });
  }
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  const { kubeconfig, paths } = workerData as Setup;
  const kube = KubeClient.load({ kubeconfig });
  paths.forEach((path, watch) => {
    void keepWatching(kube, path, (object) => {
      port.postMessage({ watch, at: Date.now(), object } satisfies WatchedEvent);
    });
  });
}

/** Starts the watches of `paths`; `onEvent` hears each event; returns the way to stop them. */
export function watchOnThread(
  kubeconfig: string,
  paths: string[],
  onEvent: (event: WatchedEvent) => void,
): () => Promise<void> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { kubeconfig, paths } satisfies Setup });
  worker.on('message', onEvent);
  worker.on('error', (err: Error) => {
    process.stderr.write(`controller-scale: the watch thread failed: ${err.message}\n`);
  });
  return async () => {
    await worker.terminate();
  };
}
