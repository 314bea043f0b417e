import { hostname } from 'node:os';
import { ConfigError, type Config } from './config.js';
import { StartupError } from './errors.js';

/**
 * The one line a start logs once the server listens: what it runs with, so a misconfigured
 * deployment shows at a glance. Hosts and paths only: never a key, a password or a user name.
 */
export function startupSummary(config: Config, mcpServers: string[], listen: string): Record<string, unknown> {
  const auth = [config.chassisApiKey === undefined ? null : 'api_key', config.enableUserAuth ? 'accounts' : null].filter((mode) => mode !== null);
  return {
    auth: auth.length === 0 ? 'open' : auth.join('+'),
    model: config.openaiModel,
    model_base_url_host: config.openaiBaseUrl === undefined ? 'api.openai.com' : new URL(config.openaiBaseUrl).host,
    model_configured: config.openaiApiKey !== undefined || config.openaiBaseUrl !== undefined,
    database: config.enablePersistence || config.enableUserAuth ? describeDatabase(config.databaseUrl) : 'off',
    redis: config.redisUrl === undefined ? 'off' : `on (${new URL(config.redisUrl).host})`,
    mcp_servers: mcpServers,
    listen,
  };
}

/** `sqlite:<path>`, or `postgres://host:port/db` without the user, password and options. */
export function describeDatabase(url: string): string {
  if (url.startsWith('sqlite:')) return url;
  const parsed = new URL(url);
  return `postgres://${parsed.host}${parsed.pathname}`;
}

/** Listen errors name the setting to change. */
export function listenFailure(error: unknown, config: Config): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  const at = `${config.host}:${config.port}`;
  if (code === 'EADDRINUSE') return new StartupError('PORT', `${at} is already in use by another process`, { cause: error });
  if (code === 'EACCES') return new StartupError('PORT', `not allowed to listen on ${at} (ports below 1024 need privileges)`, { cause: error });
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new StartupError('HOST', `${config.host} is not an address of this machine`, { cause: error });
  return error;
}

/**
 * A failed start as one JSON line in the log's own format (pino's fields, level 60 = fatal), so
 * log collectors see it like any other line; `setting` names what to change when that is known.
 */
export function startFailureLine(error: unknown): string {
  const setting = error instanceof StartupError || error instanceof ConfigError ? error.setting : null;
  const reason = error instanceof StartupError ? error.reason : error instanceof Error ? error.message : String(error);
  const line = {
    level: 60,
    time: new Date().toISOString(),
    pid: process.pid,
    hostname: hostname(),
    setting,
    reason,
    // A ConfigError's message starts with the variable's name already.
    msg: `start failed: ${error instanceof StartupError ? `${setting}: ${reason}` : reason}`,
  };
  return JSON.stringify(line);
}
