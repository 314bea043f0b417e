import { readFileSync } from 'node:fs';

/** How to reach one MCP server, after validation and `${VAR}` substitution. */
export type McpServerSpec = StdioServerSpec | HttpServerSpec;

export interface StdioServerSpec {
  name: string;
  /** `"required": true`: readiness (GET /ready) waits for this server. */
  required?: boolean;
  kind: 'stdio';
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

export interface HttpServerSpec {
  name: string;
  required?: boolean;
  kind: 'http';
  url: URL;
  headers: Record<string, string>;
  /** `auto` tries streamable HTTP first and falls back to legacy SSE. */
  transport: 'streamable_http' | 'sse' | 'auto';
}

export type McpConfigResult =
  | { status: 'missing' }
  | { status: 'invalid'; reason: string }
  | { status: 'ok'; servers: McpServerSpec[]; skipped: Array<{ name: string; reason: string; expected: boolean }> };

type Variables = Readonly<Record<string, string | undefined>>;

/** Names accepted in `transport`, as the Python version and common MCP clients spell them. */
const TRANSPORTS: Record<string, 'stdio' | 'streamable_http' | 'sse'> = {
  stdio: 'stdio',
  sse: 'sse',
  streamable_http: 'streamable_http',
  'streamable-http': 'streamable_http',
  http: 'streamable_http',
};

/** A config entry that cannot run; `expected` when it is a normal situation (an unset `${VAR}`), not a mistake. */
class EntryError extends Error {
  constructor(
    message: string,
    readonly expected = false,
  ) {
    super(message);
  }
}

/**
 * Reads MCP_CONFIG_PATH: `{"mcpServers": {name: {command, args, env, cwd?} | {url, headers, transport?}}}`.
 * A missing file means no MCP servers; a file that is not such an object is invalid as a whole; a
 * bad entry skips only that server. Unknown keys are ignored, so configs written for other MCP
 * clients load as they are.
 */
export function readMcpConfig(path: string, variables: Variables): McpConfigResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing' };
    return { status: 'invalid', reason: `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { status: 'invalid', reason: `is not valid JSON (${(error as Error).message})` };
  }
  if (!isObject(parsed) || !isObject(parsed.mcpServers)) {
    return { status: 'invalid', reason: 'must be a JSON object with an "mcpServers" object: {"mcpServers": {"name": {...}}}' };
  }
  const servers: McpServerSpec[] = [];
  const skipped: Array<{ name: string; reason: string; expected: boolean }> = [];
  for (const [name, entry] of Object.entries(parsed.mcpServers)) {
    try {
      servers.push(serverSpec(name, entry, variables));
    } catch (error) {
      if (!(error instanceof EntryError)) throw error;
      skipped.push({ name, reason: error.message, expected: error.expected });
    }
  }
  return { status: 'ok', servers, skipped };
}

function serverSpec(name: string, entry: unknown, variables: Variables): McpServerSpec {
  if (name.trim() === '' || name.length > 64 || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new EntryError('the server name must be 1 to 64 printable characters');
  }
  if (!isObject(entry)) throw new EntryError('must be an object with "command" (stdio) or "url" (HTTP)');
  let transport: string | undefined;
  if (entry.transport !== undefined) {
    if (typeof entry.transport !== 'string' || !Object.hasOwn(TRANSPORTS, entry.transport)) {
      throw new EntryError(`"transport" must be one of ${Object.keys(TRANSPORTS).join(', ')}`);
    }
    transport = TRANSPORTS[entry.transport];
  }
  if (entry.required !== undefined && typeof entry.required !== 'boolean') throw new EntryError('"required" must be true or false');
  const required = entry.required === true ? { required: true } : {};
  const hasCommand = entry.command !== undefined;
  const hasUrl = entry.url !== undefined;
  if (hasCommand === hasUrl) throw new EntryError('give either "command" (stdio) or "url" (HTTP), not both or neither');

  if (hasCommand) {
    if (transport !== undefined && transport !== 'stdio') throw new EntryError(`"transport": "${String(entry.transport)}" needs "url", not "command"`);
    if (typeof entry.command !== 'string' || entry.command.trim() === '') throw new EntryError('"command" must be a non-empty string');
    const args = entry.args ?? [];
    if (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string')) throw new EntryError('"args" must be an array of strings');
    if (entry.cwd !== undefined && typeof entry.cwd !== 'string') throw new EntryError('"cwd" must be a string');
    return {
      name,
      ...required,
      kind: 'stdio',
      command: entry.command,
      args,
      env: substituteAll(stringRecord(entry.env, 'env'), 'env', variables),
      ...(entry.cwd === undefined ? {} : { cwd: entry.cwd }),
    };
  }

  if (transport === 'stdio') throw new EntryError('"transport": "stdio" needs "command", not "url"');
  let url: URL;
  try {
    url = new URL(String(entry.url));
  } catch {
    throw new EntryError('"url" must be an absolute http(s) URL');
  }
  if (typeof entry.url !== 'string' || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new EntryError('"url" must be an absolute http(s) URL');
  }
  return {
    name,
    ...required,
    kind: 'http',
    url,
    headers: substituteAll(stringRecord(entry.headers, 'headers'), 'headers', variables),
    transport: transport === 'sse' || transport === 'streamable_http' ? transport : 'auto',
  };
}

function stringRecord(value: unknown, field: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value) || !Object.values(value).every((item) => typeof item === 'string')) {
    throw new EntryError(`"${field}" must be an object of string values`);
  }
  return value as Record<string, string>;
}

/** `${VAR}` takes the variable's value; an unset variable skips the server rather than send a blank secret. */
function substituteAll(values: Record<string, string>, field: string, variables: Variables): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).map(([key, value]) => [
      key,
      value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, variable: string) => {
        const replacement = Object.hasOwn(variables, variable) ? variables[variable] : undefined;
        // Expected: an example entry whose token this deployment does not have (logged at info).
        if (replacement === undefined) throw new EntryError(`${field}.${key} uses \${${variable}}, which is not set in the environment`, true);
        return replacement;
      }),
    ]),
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
