import { spawn, type SpawnOptions } from 'node:child_process';

export class CommandError extends Error {
  readonly output: string;
  constructor(message: string, output: string) {
    super(message);
    this.name = 'CommandError';
    this.output = output;
  }
}

/** Runs a command to completion, keeping the tail of its output for the error message. */
export async function run(command: string, args: string[], options: SpawnOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-64 * 1024);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => {
      reject(new CommandError(`${command}: ${err.message}`, output));
    });
    child.on('close', (code) => {
      if (code === 0) resolve(output);
      else {
        const tail = output.trim().split('\n').slice(-25).join('\n');
        reject(new CommandError(`\`${command} ${args.join(' ')}\` exited with ${code}:\n${tail}`, output));
      }
    });
  });
}
