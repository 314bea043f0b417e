// Writes the OpenAPI document as the server serves it (buildApp, without listening), for the linters
// of `npm run lint:openapi`. Configured from nothing but defaults: no .env, no MCP servers, no database.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

const target = process.argv[2] ?? '.cache/openapi.json';
const config = loadConfig({ ENABLE_PERSISTENCE: 'false', LOG_LEVEL: 'warn', MCP_CONFIG_PATH: join(tmpdir(), 'no-mcp-config', 'absent.json') });
const app = await buildApp(config);
try {
  const response = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
  if (response.statusCode !== 200) throw new Error(`GET /api/v1/openapi.json answered ${response.statusCode}`);
  writeFileSync(target, `${JSON.stringify(response.json(), null, 2)}\n`);
  process.stdout.write(`wrote ${target}\n`);
} finally {
  await app.close();
}
