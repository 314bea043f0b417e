// Real MCP servers on 127.0.0.1 for tests, on plain node:http (the SDK's express helpers need Node 22).

import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRawToolsServer, createTestMcpServer, newTestServerState, type RawTool, type TestServerOptions, type TestServerState } from '../__fixtures__/mcp-test-server.js';

export const STDIO_SERVER_SCRIPT = fileURLToPath(new URL('../__fixtures__/mcp-stdio-server.ts', import.meta.url));

/** An `mcpServers` entry that runs the stdio test server as a child process. */
export function stdioServer(args: string[] = [], env?: Record<string, string>) {
  return { command: process.execPath, args: ['--import', 'tsx', STDIO_SERVER_SCRIPT, ...args], ...(env === undefined ? {} : { env }) };
}

export interface TestHttpMcp {
  /** Base URL; the MCP endpoint is `${url}/mcp` (streamable) or `${url}/sse` (legacy). */
  url: string;
  state: TestServerState;
  /** Every request seen: method, path, authorization and traceparent headers. */
  requests: Array<{ method: string; path: string; authorization: string | undefined; traceparent?: string }>;
  /** Forget every session, as a restarted server would. */
  forgetSessions(): void;
  close(): Promise<void>;
}

interface HttpOptions extends TestServerOptions {
  /** Refuse (401) requests without exactly this Authorization header. */
  authorization?: string;
  /** Serve these tool definitions as they are instead of the test tools. */
  rawTools?: RawTool[];
}

function serverFor(options: HttpOptions, state: TestServerState) {
  return options.rawTools === undefined ? createTestMcpServer({ ...options, state }) : createRawToolsServer(options.rawTools);
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>, onClose: () => void) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    handler(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        onClose();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A stateful streamable HTTP MCP server at /mcp; each session gets its own McpServer over shared state. */
export async function startStreamableHttpMcp(options: HttpOptions = {}): Promise<TestHttpMcp> {
  const state = options.state ?? newTestServerState();
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const requests: TestHttpMcp['requests'] = [];
  const closeAll = () => {
    for (const transport of sessions.values()) void transport.close();
    sessions.clear();
  };
  const server = await listen(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization, traceparent: req.headers.traceparent as string | undefined });
    if (options.authorization !== undefined && req.headers.authorization !== options.authorization) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return;
    }
    if (path !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const transport = sessions.get(sessionId);
      if (transport === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
        return;
      }
      await transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, transport),
    });
    await serverFor(options, state).connect(transport);
    await transport.handleRequest(req, res);
  }, closeAll);
  return { url: server.url, state, requests, forgetSessions: closeAll, close: server.close };
}

/** A legacy SSE MCP server: GET /sse opens a session, POST /messages?sessionId= carries requests. */
export async function startSseMcp(options: HttpOptions = {}): Promise<TestHttpMcp> {
  const state = options.state ?? newTestServerState();
  const sessions = new Map<string, SSEServerTransport>();
  const requests: TestHttpMcp['requests'] = [];
  const closeAll = () => {
    for (const transport of sessions.values()) void transport.close();
    sessions.clear();
  };
  const server = await listen(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ method: req.method ?? '', path: url.pathname, authorization: req.headers.authorization });
    if (options.authorization !== undefined && req.headers.authorization !== options.authorization) {
      res.writeHead(401).end('unauthorized');
      return;
    }
    if (req.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', res);
      sessions.set(transport.sessionId, transport);
      transport.onclose = () => sessions.delete(transport.sessionId);
      await serverFor(options, state).connect(transport);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/messages') {
      const transport = sessions.get(url.searchParams.get('sessionId') ?? '');
      if (transport === undefined) {
        res.writeHead(404).end('unknown session');
        return;
      }
      await transport.handlePostMessage(req, res);
      return;
    }
    res.writeHead(405).end();
  }, closeAll);
  return { url: server.url, state, requests, forgetSessions: closeAll, close: server.close };
}

/** Accepts connections and requests and never answers them. */
export async function startSilentHttp(): Promise<{ url: string; close(): Promise<void> }> {
  return listen(() => new Promise<void>(() => {}), () => {});
}

/** Live child processes of this process whose command line mentions `marker`. */
export function childProcesses(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      if (parent !== process.pid || state === 'Z') continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** Polls `check` until it returns a value other than undefined (for state that changes in the background). */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
