import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOverrides } from './app.js';
import { loadConfig, type Config } from './config.js';

export interface ChassisOptions extends AppOverrides {
  /**
   * Settings by their environment-variable names (see .env.example), e.g. `{ OPENAI_BASE_URL: … }`.
   * Default: process.env. Nothing else is read from the environment; `.env` is not loaded.
   */
  env?: Record<string, string | undefined>;
  /** Listen on PORT/HOST (default true); false builds the app only (use `app.inject`, or listen yourself). */
  listen?: boolean;
}

export interface RunningChassis {
  app: FastifyInstance;
  config: Config;
  /** `http://host:port` once listening (the real port when PORT=0); undefined with `listen: false`. */
  url: string | undefined;
  /** Drains runs for SHUTDOWN_GRACE_SECONDS, then closes the server and every store. */
  close(): Promise<void>;
}

/**
 * The server as a library: the same composition root `npm start` uses, with tools and agents
 * passed in code. A bad setting throws ConfigError naming the variable; a bad agent file or
 * TOOLS_DIR module throws naming the file.
 */
export async function createChassis(options: ChassisOptions = {}): Promise<RunningChassis> {
  const { env = process.env, listen = true, ...overrides } = options;
  const config = loadConfig(env);
  const app = await buildApp(config, overrides);
  let url: string | undefined;
  if (listen) {
    await app.listen({ port: config.port, host: config.host });
    const address = app.server.address();
    if (address !== null && typeof address === 'object') {
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      url = `http://${host}:${address.port}`;
    }
  }
  return { app, config, url, close: () => app.chassis.shutdown() };
}
