// `lc2-backup controller`: watches BackupRequests and RestoreRequests cluster-wide and runs them
// until SIGTERM/SIGINT, then stops taking work and lets the runs in flight finish. With
// --leader-elect (two or more replicas), only the holder of the leader Lease works; a replica
// that loses the Lease aborts its runs at once (they stay InProgress and the new leader resumes
// them) and exits non-zero so its Deployment restarts it as a candidate.
import { KubeConfig } from '@kubernetes/client-node';
import { Controller } from '../../controller/controller.ts';
import { LeaderElector } from '../../controller/leader.ts';
import { exitCodes } from '../errors.ts';
import { openSession, type GlobalOptions } from '../session.ts';

export interface ControllerCommandOptions extends GlobalOptions {
  concurrency?: string;
  leaderElect?: boolean;
  /** Identity in the leader Lease; default: host name and a random suffix. */
  identity?: string;
}

function untilAborted(signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    if (signals.some((s) => s.aborted)) resolve();
    for (const s of signals)
      s.addEventListener(
        'abort',
        () => {
          resolve();
        },
        { once: true },
      );
  });
}

export async function controllerCommand(
  options: ControllerCommandOptions,
  signal: AbortSignal,
): Promise<number> {
  const concurrency = Number(options.concurrency ?? '4');
  const session = await openSession({ ...options, quiet: false });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const log = session.ctx.log;
  const say = (line: string): void => {
    process.stderr.write(`lc2-backup controller: ${line}\n`);
  };
  const work = new AbortController();
  const elector = options.leaderElect
    ? new LeaderElector({
        kubeConfig,
        namespace: session.config.controller.namespace,
        log,
        ...(options.identity === undefined ? {} : { identity: options.identity }),
      })
    : undefined;
  // the controller's own progress goes to each request's status, not to a terminal line; an
  // unreachable catalog never stops a backup (finished requests are archived later)
  const engine = { ...session.ctx, onProgress: undefined, tolerateCatalogOutage: true, signal: work.signal };
  const controller = new Controller({ kubeConfig, engine, concurrency });
  try {
    if (elector) {
      say(
        `waiting to lead (Lease ${session.config.controller.namespace}/lc2-backup-leader, identity ${elector.identity})`,
      );
      await elector.acquire(signal).catch((err: unknown) => {
        if (!signal.aborted) throw err;
      });
      if (signal.aborted) return exitCodes.ok;
      elector.lost.addEventListener(
        'abort',
        () => {
          work.abort(elector.lost.reason);
        },
        { once: true },
      );
    }
    await controller.start();
    say(`watching ${kubeConfig.getCurrentCluster()?.server ?? 'the cluster'}; Ctrl-C or SIGTERM stops it`);
    await untilAborted(elector ? [signal, elector.lost] : [signal]);
    if (elector?.lost.aborted === true) {
      say(`${String(elector.lost.reason)}; stopping`);
      return exitCodes.failure;
    }
    say('stopping; waiting for the runs in flight…');
    return exitCodes.ok;
  } finally {
    await controller.stop();
    await elector?.release();
    await session.close();
  }
}
