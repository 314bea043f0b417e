import { buildApp } from './app.js';
import { ConfigError, loadConfig, loadDotEnv } from './config.js';
import { listenFailure, startFailureLine, startupSummary } from './startup-log.js';

/** Start: read config, build the app, listen; on SIGTERM/SIGINT drain and exit 0, a second signal forces exit. */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  const app = await buildApp(config);
  process.on('unhandledRejection', (reason) => app.log.error({ err: reason }, 'unhandled rejection'));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    app.log.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
    app.chassis.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  let listen: string;
  try {
    listen = await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    throw listenFailure(error, config);
  }
  app.log.info(startupSummary(config, app.chassis.mcp.status().map((server) => server.name), listen), 'started');
}

main().catch((error: unknown) => {
  // The same JSON line format as the log, on the log's stream; 78 = EX_CONFIG for a bad setting.
  process.stdout.write(`${startFailureLine(error)}\n`);
  process.exit(error instanceof ConfigError ? 78 : 1);
});
