import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cacheRoot, isAlive, withCacheLock } from './cache.ts';

describe('the peer cache lock', () => {
  let root = '';
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'lc2-cache-test-'));
    vi.stubEnv('XDG_CACHE_HOME', root);
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await rm(root, { recursive: true, force: true });
  });

  it('lives in the user cache directory, outside the clone', () => {
    expect(cacheRoot()).toBe(join(root, 'lc2-backup'));
  });

  it('lets only one holder build at a time', async () => {
    const events: string[] = [];
    const build = (who: string) =>
      withCacheLock('peer-v1', async () => {
        events.push(`${who} start`);
        await sleep(50);
        events.push(`${who} end`);
      });
    await Promise.all([build('a'), build('b')]);
    // whichever got the lock first, the other started only after it ended
    const first = events[0]?.split(' ')[0];
    const second = first === 'a' ? 'b' : 'a';
    expect(events).toEqual([`${first} start`, `${first} end`, `${second} start`, `${second} end`]);
  });

  it('takes over a lock whose holder died', async () => {
    const dead = spawn('true');
    await new Promise((resolve) => dead.on('exit', resolve));
    expect(isAlive(dead.pid ?? 0)).toBe(false);
    const dir = join(root, 'lc2-backup', 'locks', 'stale.lock');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'pid'), String(dead.pid));
    await expect(withCacheLock('stale', () => Promise.resolve('built'))).resolves.toBe('built');
  });
});
