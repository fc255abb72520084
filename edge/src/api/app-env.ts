// The Hono environment of the edge app: Worker bindings (typed by `wrangler types`) and the parsed config.
import type { Context } from 'hono';
import { type EdgeConfig, getConfig } from '../config.ts';
import { type Logger, logger } from '../log.ts';

export type AppEnv = { Bindings: Env };
export type AppContext = Context<AppEnv>;

export function configOf(c: AppContext): EdgeConfig {
  return getConfig(c.env);
}

export function requestLog(c: AppContext, fields: Record<string, unknown> = {}): Logger {
  return logger({ component: 'api', requestId: c.req.header('cf-ray') ?? undefined, ...fields });
}
