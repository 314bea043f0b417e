import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Config } from '../config.js';
import { Type } from '../json-schema.js';

/** Where `npm run build` puts the page (packages/playground/dist), from src/http or dist/http alike. */
export const PLAYGROUND_DIR = fileURLToPath(new URL('../../packages/playground/dist/', import.meta.url));

// Everything the page loads comes from us: no inline script or style, no other host.
export const PLAYGROUND_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

interface StaticFile {
  body: Buffer;
  type: string;
}

const PlaygroundConfig = Type.Object({
  accounts: Type.Boolean({ description: 'User accounts are on (ENABLE_USER_AUTH): sign in with email and password' }),
  api_key: Type.Boolean({ description: 'An API key is configured (CHASSIS_API_KEY): sign in with it' }),
  dev_outbox: Type.Boolean({ description: 'Mail goes to the server log ("DEV OUTBOX" lines) instead of SMTP' }),
  persistence: Type.Boolean({ description: 'Server-side sessions are on' }),
  default_model: Type.String({ description: 'The model used when a request names none' }),
}, { description: 'The sign-in methods and features of this server' });

/**
 * The web playground: the built page at /playground (`/` redirects there), under a CSP that allows
 * only our own scripts, styles and API. Files are read once at start and only when they exist, so a
 * server built without the page pays nothing; /playground then says how to build it.
 */
export function registerPlayground(app: FastifyInstance, config: Config, directory = PLAYGROUND_DIR): void {
  if (!config.enablePlayground) return;

  // What the page needs to know to offer the right sign-in; nothing secret (the 401/503 answers say as much).
  app.get(
    '/playground/config.json',
    {
      schema: {
        operationId: 'getPlaygroundConfig',
        tags: ['playground'],
        summary: 'Which sign-in methods and features this server offers the playground',
        security: [],
        response: { 200: PlaygroundConfig },
      },
    },
    async () => ({
      accounts: config.enableUserAuth,
      api_key: config.chassisApiKey !== undefined,
      dev_outbox: config.smtpHost === undefined,
      persistence: config.enablePersistence,
      default_model: config.openaiModel,
    }),
  );

  const files = readBuiltFiles(directory);
  const index = files.get('index.html');
  const hidden = { schema: { hide: true } };
  if (index === undefined) {
    app.get('/playground', hidden, async (_request, reply) =>
      reply.code(404).send({ detail: 'The playground is not built: run `npm run build` (it builds packages/playground), then restart', code: 'NOT_FOUND' }),
    );
    return;
  }

  const page = (reply: FastifyReply, file: StaticFile, immutable: boolean) =>
    reply
      .header('content-security-policy', PLAYGROUND_CSP)
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .type(file.type)
      .send(file.body);

  app.get('/', hidden, async (_request, reply) => reply.redirect('/playground/', 302));
  app.get('/playground', hidden, async (_request, reply) => page(reply, index, false));
  app.get('/playground/*', hidden, async (request, reply) => {
    const path = (request.params as { '*': string })['*'];
    if (path === '') return page(reply, index, false);
    const file = files.get(path);
    if (file === undefined) return reply.callNotFound();
    // Vite puts a content hash in every name under assets/: those never change.
    return page(reply, file, path.startsWith('assets/'));
  });
}

/** Every file under `directory` by its relative path ('/'-separated); empty when there is none. */
function readBuiltFiles(directory: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!existsSync(join(directory, 'index.html'))) return files;
  const walk = (relative: string) => {
    for (const name of readdirSync(join(directory, relative))) {
      const path = relative === '' ? name : `${relative}/${name}`;
      const full = join(directory, path);
      if (statSync(full).isDirectory()) walk(path);
      else files.set(path, { body: readFileSync(full), type: TYPES[extname(name)] ?? 'application/octet-stream' });
    }
  };
  walk('');
  return files;
}
