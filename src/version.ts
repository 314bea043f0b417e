import { readFileSync } from 'node:fs';

/** This server's version (package.json), read once: the docs, /health, the model client's user agent, MCP's client info and the traces' service.version. */
export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
