#!/usr/bin/env node
// The `lc2-backup` command line. Commands arrive with their issues; until then each says so
// and exits non-zero rather than pretending to work.
const commands = [
  'backup',
  'restore',
  'list',
  'describe',
  'verify',
  'retention',
  'catalog',
  'controller',
  'worker',
  'demo',
];

export function main(argv: string[]): number {
  const [command] = argv;
  if (command === undefined || command === 'help' || command === '--help') {
    process.stdout.write(`usage: lc2-backup <command>\n\ncommands: ${commands.join(', ')}\n`);
    return 0;
  }
  if (!commands.includes(command)) {
    process.stderr.write(`lc2-backup: unknown command "${command}"; commands: ${commands.join(', ')}\n`);
    return 2;
  }
  process.stderr.write(`lc2-backup ${command}: not implemented yet\n`);
  return 1;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
