import { describe, expect, it } from 'vitest';
import { loadsWhileDownloading } from './splitRestore.ts';

describe('loading while the dump downloads', () => {
  it('does as configured when told always or never', () => {
    expect(loadsWhileDownloading('always', { host: '127.0.0.1', jobs: 2 }, 1)).toBe(true);
    expect(loadsWhileDownloading('never', { host: 'db.example.com', jobs: 2 }, 64)).toBe(false);
  });

  it('auto: always for a server on another machine', () => {
    for (const host of ['db.example.com', '10.0.0.7', 'postgres.ns.svc']) {
      expect(loadsWhileDownloading('auto', { host, jobs: 2 }, 2), host).toBe(true);
    }
  });

  it('auto: next to a local server only with cores to spare beside its backends', () => {
    for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '/var/run/postgresql', '']) {
      expect(loadsWhileDownloading('auto', { host, jobs: 2 }, 2), host).toBe(false);
      expect(loadsWhileDownloading('auto', { host, jobs: 2 }, 5), host).toBe(false);
      expect(loadsWhileDownloading('auto', { host, jobs: 2 }, 6), host).toBe(true);
    }
    expect(loadsWhileDownloading('auto', { host: 'localhost', jobs: 4 }, 8)).toBe(false);
    expect(loadsWhileDownloading('auto', { host: 'localhost', jobs: 1 }, 4)).toBe(true);
  });
});
