#!/usr/bin/env node
// The `lc2-backup` command line. Errors are mapped to exit codes in one place (cli/errors.ts).
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { parseResource } from '../../api/v1alpha1/parse.ts';
import { ValidationError } from '../errors/index.ts';
import { exitCodeOf, exitCodes } from './errors.ts';
import { toolVersion, type GlobalOptions } from './session.ts';

// Each command's module is loaded when the command runs: the controller's process then holds
// neither the demo's test bed nor the data commands' code (RSS is one of its targets).
const data = (): Promise<typeof import('./commands/data.ts')> => import('./commands/data.ts');
const workers = (): Promise<typeof import('./commands/worker.ts')> => import('./commands/worker.ts');

function readRequestFile<K extends 'BackupRequest' | 'RestoreRequest'>(kind: K, file: string) {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (err) {
    throw new ValidationError(
      `-f ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  return parseResource(kind, text, file);
}

export function buildProgram(
  run: (work: (signal: AbortSignal) => Promise<number>) => Promise<void>,
): Command {
  const program = new Command('lc2-backup')
    .description('Back up and restore application stacks (PostgreSQL + document library) as one unit')
    .version(toolVersion)
    .option('-c, --config <file>', 'configuration file (default: $LC2_CONFIG)')
    .option(
      '--catalog <url>',
      'history catalog: pglite://<dir>, pglite://memory or postgresql://… (default: config, then ~/.local/share/lc2-backup/catalog)',
    )
    .option('--json', 'print the result as JSON on stdout')
    .option('-q, --quiet', 'no progress or log lines')
    .showHelpAfterError()
    .exitOverride();
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();

  program
    .command('backup')
    .description('run a BackupRequest now: database, then document library, then the manifest')
    .requiredOption('-f, --file <request.yaml>', 'the BackupRequest (YAML or JSON; - for stdin)')
    .action(async (o: { file: string }) =>
      run(async (signal) =>
        (await data()).backupCommand(globals(), readRequestFile('BackupRequest', o.file), signal),
      ),
    );

  program
    .command('restore')
    .description('restore a backup into a NEW database and a new bucket/prefix')
    .argument('[backupId]', 'the backup to restore (or give a RestoreRequest with -f)')
    .option('-f, --file <restore.yaml>', 'a RestoreRequest')
    .option('--to-instance <id>', 'the database instance to restore into')
    .option('--to-database <name>', 'the new database to create there')
    .option('--to-bucket <bucket>', 'the bucket to restore the documents into')
    .option('--to-prefix <prefix>', 'a key prefix in that bucket')
    .action(
      async (
        backupId: string | undefined,
        o: { file?: string; toInstance?: string; toDatabase?: string; toBucket?: string; toPrefix?: string },
      ) =>
        run(async (signal) =>
          (await data()).restoreCommand(
            globals(),
            {
              backupId,
              ...o,
              request: o.file === undefined ? undefined : readRequestFile('RestoreRequest', o.file),
            },
            signal,
          ),
        ),
    );

  program
    .command('verify')
    .description(
      "check a backup's manifest and every stored object (exit 5 and each bad object named on failure)",
    )
    .argument('<backupId>')
    .option('--deep', 're-read and re-hash every stored byte')
    .action(async (backupId: string, o: { deep?: boolean }) =>
      run(async (signal) => (await data()).verifyCommand(globals(), backupId, o.deep === true, signal)),
    );

  program
    .command('list')
    .description('list recorded backups, newest first')
    .option('-p, --project <id>')
    .option('-e, --environment <env>')
    .option('-s, --state <state>', 'Pending, InProgress, Succeeded, Failed or ManifestMissing')
    .option('-n, --limit <n>', 'at most this many', '50')
    .action(async (o: { project?: string; environment?: string; state?: string; limit: string }) =>
      run(async () => (await data()).listCommand(globals(), o)),
    );

  program
    .command('describe')
    .description("show a backup's catalog record and manifest")
    .argument('<backupId>')
    .action(async (backupId: string) => run(async () => (await data()).describeCommand(globals(), backupId)));

  program
    .command('catalog')
    .description('maintain the history catalog')
    .command('rebuild')
    .description('re-create the history from the manifests in the configured buckets')
    .option('-p, --project <id>', 'only this project')
    .action(async (o: { project?: string }) =>
      run(async () => (await data()).catalogRebuildCommand(globals(), o.project)),
    );

  program
    .command('demo')
    .description(
      'back up, verify and restore a sample application on the test bed (PostgreSQL + MinIO), then clean up',
    )
    .action(async () =>
      run(async (signal) => (await import('./commands/demo.ts')).demoCommand(globals(), signal)),
    );

  program
    .command('controller')
    .description(
      'watch BackupRequests in the cluster (KUBECONFIG or in-cluster) and drive each to Succeeded or Failed',
    )
    .option(
      '--concurrency <n>',
      'reconciles at once (default 256: they mostly wait for the API server; running backups do not count, the slot limits bound them)',
    )
    .option(
      '--api-concurrency <n>',
      'API calls in flight at most (default 32); more wait, first answers to new requests before bookkeeping',
    )
    .option(
      '--api-http1',
      'talk HTTP/1.1 to the API server (default: HTTP/2 when it offers h2, as client-go; watches use HTTP/1.1 either way)',
    )
    .option('--leader-elect', 'run as one of several replicas: only the holder of the leader Lease works')
    .option('--identity <id>', 'this replica in the leader Lease (default: host name + random suffix)')
    .option(
      '--metrics-port <port>',
      '/metrics, /healthz and /readyz (default LC2_METRICS_PORT or 8080; 0: any)',
    )
    .action(
      async (o: {
        concurrency?: string;
        apiConcurrency?: string;
        apiHttp1?: boolean;
        leaderElect?: boolean;
        identity?: string;
        metricsPort?: string;
      }) =>
        run(async (signal) =>
          (await import('./commands/controller.ts')).controllerCommand({ ...globals(), ...o }, signal),
        ),
    );

  const worker = program
    .command('worker')
    .description('what runs inside the Kubernetes Jobs the controller creates');
  worker
    .command('fire-schedule')
    .description("create a BackupRequest from a BackupSchedule's template (the Job of its CronJob)")
    .requiredOption('--namespace <namespace>', "the BackupSchedule's namespace")
    .requiredOption('--schedule <name>', 'the BackupSchedule')
    .action(async (o: { namespace: string; schedule: string }) =>
      run(async () => (await workers()).fireScheduleCommand(o)),
    );
  for (const kind of ['backup', 'restore'] as const) {
    worker
      .command(kind)
      .description(
        `run one ${kind === 'backup' ? 'BackupRequest' : 'RestoreRequest'} in this process (the Job of executor: job)`,
      )
      .requiredOption('--namespace <namespace>', "the request's namespace")
      .requiredOption('--name <name>', 'the request')
      .action(async (o: { namespace: string; name: string }) =>
        run(async (signal) => (await workers()).workCommand(kind, { ...globals(), ...o }, signal)),
      );
  }
  return program;
}

/** Runs a command with Ctrl-C wired to an AbortSignal and errors mapped to exit codes. */
async function runCommand(work: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const abort = new AbortController();
  const onSignal = (): void => {
    process.stderr.write('\ninterrupted: stopping and cleaning up (Ctrl-C again to force)…\n');
    abort.abort(new Error('interrupted by signal'));
    process.once('SIGINT', () => process.exit(exitCodes.interrupted));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(abort.signal);
  } catch (err) {
    if (abort.signal.aborted) {
      process.stderr.write(
        `lc2-backup: interrupted; the run is recorded as Failed and its partial output removed\n`,
      );
      return exitCodes.interrupted;
    }
    process.stderr.write(`lc2-backup: ${err instanceof Error ? err.message : String(err)}\n`);
    return exitCodeOf(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function main(argv: string[]): Promise<number> {
  let code: number = exitCodes.ok;
  const program = buildProgram(async (work) => {
    code = await runCommand(work);
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : exitCodes.invalid;
    throw err;
  }
  return typeof process.exitCode === 'number' && code === 0 ? process.exitCode : code;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
