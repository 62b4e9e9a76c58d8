import { afterEach, describe, expect, it, vi } from 'vitest';
import { IntegrityError, NotFoundError, PolicyError, ValidationError } from '../errors/index.ts';
import { exitCodeOf } from './errors.ts';
import { main } from './main.ts';

describe('lc2-backup CLI', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  it('refuses a command that does not exist with exit code 2', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockReturnValue(true);
    expect(await main(['bakup'])).toBe(2);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(/unknown command 'bakup'/);
  });

  it('refuses a worker step without the request it is for, naming the missing option', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockReturnValue(true);
    expect(await main(['worker', 'backup', '--namespace', 'proj-retail-prd'])).toBe(2);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(/required option '--name <name>'/);
  });

  it('rejects a request file that does not exist, naming it', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockReturnValue(true);
    expect(await main(['backup', '-f', '/nonexistent/request.yaml'])).toBe(2);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain(
      '-f /nonexistent/request.yaml: cannot read it (ENOENT)',
    );
  });

  it('maps each error class to its documented exit code', () => {
    expect(exitCodeOf(new ValidationError('x'))).toBe(2);
    expect(exitCodeOf(new PolicyError('x'))).toBe(3);
    expect(exitCodeOf(new NotFoundError('x'))).toBe(4);
    expect(exitCodeOf(new IntegrityError('x'))).toBe(5);
    expect(exitCodeOf(new Error('x'))).toBe(1);
  });
});
