import { describe, expect, it } from 'vitest';
import { CatalogUnavailableError } from '../catalog/errors.ts';
import { NotFoundError, ValidationError } from '../errors/index.ts';
import { silentLogger } from '../observability/logger.ts';
import type { EngineContext } from './context.ts';
import { recordHistory } from './history.ts';

const ctx = (tolerant: boolean): EngineContext =>
  ({ log: silentLogger, tolerateCatalogOutage: tolerant }) as unknown as EngineContext;

describe('recordHistory', () => {
  it('in the controller (tolerant), logs an outage or a start row lost to one, and goes on', async () => {
    const outage = new CatalogUnavailableError('cannot connect to the catalog database', 'ECONNREFUSED');
    const missingStart = new NotFoundError('backup x is not in the catalog: record its start first');
    for (const err of [outage, missingStart]) {
      await expect(
        recordHistory(ctx(true), 'the success of backup x', () => Promise.reject(err)),
      ).resolves.toBe(undefined);
    }
  });

  it('fails the run on any other catalog error, and on every error in the CLI', async () => {
    await expect(
      recordHistory(ctx(true), 'x', () => Promise.reject(new ValidationError('bad field'))),
    ).rejects.toThrow('bad field');
    await expect(
      recordHistory(ctx(false), 'x', () =>
        Promise.reject(new NotFoundError('backup x is not in the catalog')),
      ),
    ).rejects.toThrow(NotFoundError);
  });
});
