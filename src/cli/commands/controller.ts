// `lc2-backup controller`: watches BackupRequests cluster-wide and runs them in-process until
// SIGTERM/SIGINT, then stops taking work and lets the backups in flight finish.
import { KubeConfig } from '@kubernetes/client-node';
import { Controller } from '../../controller/controller.ts';
import { exitCodes } from '../errors.ts';
import { openSession, type GlobalOptions } from '../session.ts';

export async function controllerCommand(
  options: GlobalOptions & { concurrency?: string },
  signal: AbortSignal,
): Promise<number> {
  const concurrency = Number(options.concurrency ?? '4');
  const session = await openSession({ ...options, quiet: false });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  // the controller's own progress goes to each request's status, not to a terminal line
  const engine = { ...session.ctx, onProgress: undefined };
  const controller = new Controller({ kubeConfig, engine, concurrency });
  try {
    await controller.start();
    process.stderr.write(
      `lc2-backup controller: watching ${kubeConfig.getCurrentCluster()?.server ?? 'the cluster'}; Ctrl-C or SIGTERM stops it\n`,
    );
    if (!signal.aborted) {
      await new Promise((resolve) => {
        signal.addEventListener('abort', resolve, { once: true });
      });
    }
    process.stderr.write('lc2-backup controller: stopping; waiting for the backups in flight…\n');
  } finally {
    await controller.stop();
    await session.close();
  }
  return exitCodes.ok;
}
