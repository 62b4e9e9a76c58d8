import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from './main.ts';

describe('lc2-backup CLI', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('refuses a command that does not exist, naming the valid ones', () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockReturnValue(true);
    expect(main(['bakup'])).toBe(2);
    expect(String(stderr.mock.calls[0]?.[0])).toMatch(/unknown command "bakup".*backup, restore/);
  });

  it('says a command is not implemented yet and exits non-zero instead of faking success', () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockReturnValue(true);
    expect(main(['demo'])).toBe(1);
    expect(String(stderr.mock.calls[0]?.[0])).toContain('not implemented yet');
  });
});
