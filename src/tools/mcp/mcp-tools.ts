import type { FastifyBaseLogger } from 'fastify';
import type { ToolRegistry } from '../registry.js';
import type { Tool } from '../types.js';
import type { McpInstrument } from '../../observability/types.js';
import type { McpServerSpec } from './config-file.js';
import type { McpToolInfo } from './connection.js';
import { withoutAddresses } from './addresses.js';
import { resultText } from './content.js';
import { assignNames } from './names.js';
import { McpServerHandle, type McpServerStatus } from './server-handle.js';

export interface McpToolsOptions {
  configPath: string;
  /** Values for `${VAR}` in the file's headers and env. */
  variables: Readonly<Record<string, string | undefined>>;
  connectTimeoutSeconds: number;
  toolTimeoutSeconds: number;
  registry: ToolRegistry;
  log: FastifyBaseLogger;
  clientVersion: string;
  /** Tracing: a span per call, and trace headers to HTTP servers. */
  instrument?: McpInstrument;
}

export interface McpTools {
  /** Starts connecting to every server in the background; returns at once. */
  start(): void;
  /** Resolves once every configured server has finished its first connection attempt, whatever the outcome. */
  settled(): Promise<void>;
  status(): McpServerStatus[];
  /** Closes every session and stops every server process; pending reconnects are cancelled. */
  close(): Promise<void>;
}

interface Registered {
  info: McpToolInfo;
  aliases: string;
}

/**
 * The servers of a valid MCP config: `start()` connects to each in the background, and each
 * server's tools join the registry when it is ready, beside the local tools and under the same
 * rules (allowed_tools, argument validation, timeouts, errors as tool results).
 */
export function connectMcpServers(servers: McpServerSpec[], options: McpToolsOptions): McpTools {
  const { log, registry } = options;
  const handles = servers.map(
    (spec) =>
      new McpServerHandle(spec, {
        connectTimeoutMs: options.connectTimeoutSeconds * 1000,
        clientVersion: options.clientVersion,
        log,
        instrument: options.instrument,
        onToolsChanged: () => sync(),
      }),
  );
  const registered = new Map<string, Registered>();
  const reported = new Set<string>();
  let closed = false;
  /** Each list change re-runs the naming, so say each problem once, not on every change. */
  const warnOnce = (server: string, tool: string, reason: string) => {
    const key = `${server}\u0000${tool}\u0000${reason}`;
    if (!reported.has(key)) log.warn({ mcpServer: server, tool }, `MCP tool skipped: ${reason}`);
    reported.add(key);
  };

  /** Brings the registry in line with every server's current list and the naming rules. */
  const sync = () => {
    if (closed) return;
    const localNames = new Set(registry.list().map((tool) => tool.name).filter((name) => !registered.has(name)));
    const byServer = new Map(handles.map((handle) => [handle.name, handle]));
    const wanted = new Map<string, { handle: McpServerHandle; info: McpToolInfo; aliases: string[] }>();
    const assignments = assignNames(
      localNames,
      handles.map((handle) => ({ server: handle.name, tools: handle.tools.map((tool) => tool.name) })),
    );
    for (const assignment of assignments) {
      if ('skipped' in assignment) {
        warnOnce(assignment.server, assignment.tool, assignment.skipped);
        continue;
      }
      const handle = byServer.get(assignment.server)!;
      const info = handle.tools.find((tool) => tool.name === assignment.tool)!;
      wanted.set(assignment.name, { handle, info, aliases: assignment.aliases });
    }
    for (const [name, current] of registered) {
      const next = wanted.get(name);
      if (next === undefined || next.info !== current.info || next.aliases.join() !== current.aliases) {
        registry.unregister(name);
        registered.delete(name);
      }
    }
    for (const [name, { handle, info, aliases }] of wanted) {
      if (registered.has(name)) continue;
      try {
        registry.register(mcpTool(name, handle, info, options.toolTimeoutSeconds), aliases);
        registered.set(name, { info, aliases: aliases.join() });
      } catch (error) {
        warnOnce(handle.name, info.name, `its input schema is not valid JSON Schema (${(error as Error).message})`);
      }
    }
  };

  return {
    start() {
      if (!closed) for (const handle of handles) handle.start();
    },
    settled: async () => {
      await Promise.all(handles.map((handle) => handle.firstAttempt));
    },
    status: () => handles.map((handle) => handle.status()),
    async close() {
      closed = true;
      await Promise.all(handles.map((handle) => handle.close()));
    },
  };
}

function mcpTool(name: string, handle: McpServerHandle, info: McpToolInfo, timeoutSeconds: number): Tool {
  return {
    name,
    description: info.description,
    parameters: parametersOf(info.inputSchema),
    source: `mcp:${handle.name}`,
    timeoutSeconds,
    async run(args, { signal }) {
      // The registry times the call out and aborts `signal`, which cancels the request on the server;
      // the SDK's own timeout (60 s by default) only backs that up, so it must not fire first.
      const send = () => handle.call(info.name, args, signal, timeoutSeconds * 1000 + 5000);
      const instrument = handle.instrument;
      let result: Awaited<ReturnType<McpServerHandle['call']>>;
      try {
        result = instrument === undefined ? await send() : await instrument.call(handle.name, info.name, handle.status().transport, send);
      } catch (error) {
        // Connection failures reach the model as the tool's result: never with our internal addresses.
        throw new Error(withoutAddresses(error instanceof Error ? error.message : String(error)));
      }
      const text = resultText(result);
      if ('isError' in result && result.isError === true) throw new Error(text === '' ? 'the tool reported an error without details' : text);
      return text;
    },
  };
}

/** The server's input schema as function parameters: `$schema` means nothing to the model (and Ajv knows only some drafts). */
function parametersOf(inputSchema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _dialect, ...schema } = inputSchema;
  return { ...schema, type: 'object', properties: schema.properties ?? {} };
}

