// What every data command opens: the configuration, the catalog and the stores, plus the
// engine context that ties them to this terminal (logs and progress on stderr).
import { openCatalog } from '../catalog/catalog.ts';
import { loadConfig, resolveSecret, type Config } from '../config/config.ts';
import type { EngineContext } from '../engine/context.ts';
import { StoreRegistry } from '../engine/stores.ts';
import { lineLogger, silentLogger } from '../observability/logger.ts';
import { progressPrinter } from './output.ts';
import pkg from '../../package.json' with { type: 'json' };

export interface GlobalOptions {
  config?: string;
  catalog?: string;
  json?: boolean;
  quiet?: boolean;
}

export interface Session {
  ctx: EngineContext;
  config: Config;
  close: () => Promise<void>;
  progressDone: () => void;
}

export const toolVersion: string = pkg.version;

export async function openSession(options: GlobalOptions, signal?: AbortSignal): Promise<Session> {
  const config = loadConfig(options.config);
  const url = options.catalog ?? config.catalog;
  const password = config.catalogPassword
    ? resolveSecret(config.catalogPassword, 'catalogPassword')
    : undefined;
  const catalog = await openCatalog(url, password === undefined ? {} : { pool: { password } });
  const quiet = options.quiet === true || options.json === true;
  const progress = progressPrinter(process.stderr, quiet);
  const ctx: EngineContext = {
    config,
    catalog,
    stores: new StoreRegistry(config),
    log: quiet ? silentLogger : lineLogger((line) => process.stderr.write(line)),
    onProgress: progress.onProgress,
    initiator: process.env.USER ?? 'cli',
    toolVersion,
    ...(signal === undefined ? {} : { signal }),
  };
  return { ctx, config, close: () => catalog.close(), progressDone: progress.done };
}
