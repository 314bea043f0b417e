import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport, SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError, ToolListChangedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { HttpServerSpec, McpServerSpec } from './config-file.js';

export type TransportKind = 'stdio' | 'streamable_http' | 'sse';

export interface McpToolInfo {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

/** Why a call failed, so the server handle knows whether the session survived it. */
export class McpCallFailure extends Error {
  constructor(
    message: string,
    /** `answered`: the server replied with an error; `session_expired`: start a new session and the call may be sent again; `transport`: the connection is gone. */
    readonly kind: 'answered' | 'session_expired' | 'transport',
  ) {
    super(message);
  }
}

export interface ConnectionOptions {
  timeoutMs: number;
  clientVersion: string;
  log: FastifyBaseLogger;
  /** Tracing: adds the current trace context to each request sent to an HTTP server. */
  injectHeaders?: (headers: Headers) => void;
  /** Stops a connect in progress (shutdown). */
  signal: AbortSignal;
  /** For `auto` HTTP servers: the transport that worked last time, so reconnects skip the probe. */
  knownKind?: TransportKind;
  onToolsChanged(): void;
  /** The session ended on its own: the process exited, the stream dropped. Not called after close(). */
  onLost(reason: string): void;
}

/** One live, initialized session with an MCP server. The only file that talks to the MCP SDK. */
export interface McpConnection {
  readonly kind: TransportKind;
  listTools(signal?: AbortSignal): Promise<McpToolInfo[]>;
  /** `signal` cancels the request on the server; `timeoutMs` is the SDK's own limit, a backstop. */
  callTool(name: string, args: unknown, signal: AbortSignal, timeoutMs: number): Promise<CallToolResult | { toolResult: unknown }>;
  close(): Promise<void>;
}

const MAX_TOOL_PAGES = 100;

/**
 * Starts the server (stdio) or reaches it (HTTP), initializes, and lists its tools, all within
 * `timeoutMs`. An `auto` URL tries streamable HTTP and, when that fails with an error (not a
 * timeout), legacy SSE within what is left of the same time.
 */
export async function openConnection(spec: McpServerSpec, options: ConnectionOptions): Promise<{ connection: McpConnection; tools: McpToolInfo[] }> {
  // Not AbortSignal.any: on Node 20 every reconnect would leave an entry on the long-lived shutdown signal.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('connect timeout')), options.timeoutMs);
  const onShutdown = () => controller.abort(options.signal.reason);
  if (options.signal.aborted) onShutdown();
  else options.signal.addEventListener('abort', onShutdown, { once: true });
  const deadline = controller.signal;
  try {
    if (spec.kind === 'stdio') return await attempt(spec, 'stdio', deadline, options);
    const kind = spec.transport === 'auto' ? (options.knownKind ?? 'auto') : spec.transport;
    if (kind !== 'auto') return await attempt(spec, kind, deadline, options);
    try {
      return await attempt(spec, 'streamable_http', deadline, options);
    } catch (error) {
      if (deadline.aborted) throw error;
      options.log.info({ mcpServer: spec.name, err: error }, 'MCP server does not speak streamable HTTP; trying legacy SSE');
      try {
        return await attempt(spec, 'sse', deadline, options);
      } catch (sseError) {
        if (deadline.aborted) throw sseError;
        throw new Error(`streamable HTTP failed (${errorText(error)}), then SSE failed (${errorText(sseError)})`);
      }
    }
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onShutdown);
  }
}

async function attempt(
  spec: McpServerSpec,
  kind: TransportKind,
  deadline: AbortSignal,
  options: ConnectionOptions,
): Promise<{ connection: McpConnection; tools: McpToolInfo[] }> {
  const transport = createTransport(spec, kind, options.log, options.injectHeaders);
  const client = new Client({ name: 'agent-chassis', version: options.clientVersion }, { capabilities: {} });
  let closedByUs = false;
  let connected = false;
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => options.onToolsChanged());
  client.onclose = () => {
    if (connected && !closedByUs) options.onLost(kind === 'stdio' ? 'the server process exited' : 'the connection closed');
  };
  client.onerror = (error) => {
    // A legacy SSE session lives exactly as long as its stream; for streamable HTTP the GET stream
    // is optional and calls tell us when the session is really gone.
    if (connected && !closedByUs && kind === 'sse') options.onLost(error instanceof SseError ? `the SSE stream ended${error.code ? ` (HTTP ${error.code})` : ''}` : errorText(error));
    else options.log.debug({ mcpServer: spec.name, err: error }, 'MCP transport error');
  };
  // Once, and every caller waits for the same end (the SDK's second close returns before the process exits).
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      closedByUs = true;
      if (transport instanceof StreamableHTTPClientTransport && transport.sessionId !== undefined) {
        // Tell the server the session is over; it may not support that, and it may be gone.
        await Promise.race([transport.terminateSession().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      }
      await client.close().catch(() => {});
    })());

  const connection: McpConnection = {
    kind,
    async listTools(signal) {
      const tools: McpToolInfo[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < MAX_TOOL_PAGES; page++) {
        const result = await client.listTools(cursor === undefined ? undefined : { cursor }, { signal });
        for (const tool of result.tools) {
          tools.push({ name: tool.name, description: tool.description ?? tool.title ?? '', inputSchema: tool.inputSchema });
        }
        cursor = result.nextCursor;
        if (cursor === undefined) break;
      }
      return tools;
    },
    async callTool(name, args, signal, timeoutMs) {
      try {
        return await client.callTool({ name, arguments: args as Record<string, unknown> }, undefined, { signal, timeout: timeoutMs });
      } catch (error) {
        if (signal.aborted) throw error;
        throw callFailure(error);
      }
    },
    close,
  };

  const onAbort = () => void close();
  deadline.addEventListener('abort', onAbort, { once: true });
  try {
    const work = (async () => {
      await client.connect(transport, { signal: deadline });
      return connection.listTools(deadline);
    })();
    work.catch(() => {}); // when the deadline wins the race, the late failure is expected
    const tools = await Promise.race([work, aborted(deadline)]);
    connected = true;
    return { connection, tools };
  } catch (error) {
    await close();
    if (deadline.aborted && !options.signal.aborted) {
      throw new Error(`no answer within ${options.timeoutMs / 1000} s (MCP_CONNECT_TIMEOUT_SECONDS)`);
    }
    if (kind === 'stdio' && error instanceof McpError && error.code === ErrorCode.ConnectionClosed) {
      throw new Error('the server process exited during start-up (its stderr is in the log)');
    }
    throw error;
  } finally {
    deadline.removeEventListener('abort', onAbort);
  }
}

function createTransport(spec: McpServerSpec, kind: TransportKind, log: FastifyBaseLogger, injectHeaders?: (headers: Headers) => void): Transport {
  if (spec.kind === 'stdio') {
    const transport = new StdioClientTransport({ command: spec.command, args: spec.args, env: spec.env, cwd: spec.cwd, stderr: 'pipe' });
    // Servers log to stderr; keep it in our log, tagged with the server, instead of on our stderr.
    const stderr = transport.stderr;
    if (stderr !== null) {
      createInterface({ input: stderr as Readable, crlfDelay: Infinity }).on('line', (line) => {
        if (line.trim() !== '') log.info({ mcpServer: spec.name, stderr: line.slice(0, 2000) }, 'MCP server stderr');
      });
    }
    return transport;
  }
  return httpTransport(spec, kind, injectHeaders);
}

function httpTransport(spec: HttpServerSpec, kind: TransportKind, injectHeaders?: (headers: Headers) => void): Transport {
  const requestInit: RequestInit = { headers: spec.headers };
  // With tracing on, every request carries `traceparent` for the span current when it is sent.
  const tracedFetch =
    injectHeaders === undefined
      ? undefined
      : (url: string | URL, init?: RequestInit) => {
          const headers = new Headers(init?.headers);
          injectHeaders(headers);
          return fetch(url, { ...init, headers });
        };
  const extra = tracedFetch === undefined ? {} : { fetch: tracedFetch };
  return kind === 'sse' ? new SSEClientTransport(spec.url, { requestInit, ...extra }) : new StreamableHTTPClientTransport(spec.url, { requestInit, ...extra });
}

function callFailure(error: unknown): McpCallFailure {
  if (error instanceof McpError) {
    if (error.code === ErrorCode.ConnectionClosed) return new McpCallFailure('the connection to the MCP server closed during the call', 'transport');
    return new McpCallFailure(error.message, 'answered');
  }
  if (error instanceof StreamableHTTPError) {
    // 404 for a request carrying a session id: the server no longer knows the session (it restarted).
    if (error.code === 404) return new McpCallFailure('the MCP server no longer knows our session', 'session_expired');
    return new McpCallFailure(errorText(error), 'answered');
  }
  if (error instanceof Error && /^Error POSTing to endpoint \(HTTP 404\)/.test(error.message)) {
    // The legacy SSE transport's way of saying the same (its error has no status field).
    return new McpCallFailure('the MCP server no longer knows our session', 'session_expired');
  }
  return new McpCallFailure(`the MCP server could not be reached: ${errorText(error)}`, 'transport');
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${text}${cause}`.slice(0, 1000);
}
