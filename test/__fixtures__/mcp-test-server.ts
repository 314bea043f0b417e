// A real MCP server (the SDK's McpServer) with tools that exercise the chassis' MCP client:
// plain answers, errors, crashes, slow calls that notice cancellation, mixed content and
// tools added at run time (which makes the SDK send notifications/tools/list_changed).

import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** Shared by every session of one server, so HTTP tests can see what earlier calls did. */
export interface TestServerState {
  counter: number;
  cancelled: number;
  calls: string[];
}

export function newTestServerState(): TestServerState {
  return { counter: 0, cancelled: 0, calls: [] };
}

export interface TestServerOptions {
  /** Names of the tools to offer; all of them when absent. */
  only?: readonly string[];
  state?: TestServerState;
  /** Shown in the `whoami` answer, to tell servers apart. */
  label?: string;
}

const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

export function createTestMcpServer(options: TestServerOptions = {}): McpServer {
  const state = options.state ?? newTestServerState();
  const server = new McpServer({ name: 'chassis-test-server', version: '1.0.0' }, { capabilities: { tools: { listChanged: true } } });
  const offer = (name: string) => options.only === undefined || options.only.includes(name);
  const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] });
  const record = (name: string) => state.calls.push(name);

  if (offer('echo')) {
    server.registerTool('echo', { description: 'Echo the text back', inputSchema: { text: z.string() } }, async ({ text: value }) => {
      record('echo');
      return text(`echo: ${value}`);
    });
  }
  if (offer('whoami')) {
    server.registerTool('whoami', { description: 'Say which server answers' }, async () => {
      record('whoami');
      return text(`${options.label ?? 'unnamed'} pid ${process.pid}`);
    });
  }
  if (offer('calculate')) {
    server.registerTool('calculate', { description: 'A remote calculator that shares its name with the local tool', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => {
      record('calculate');
      return text(`remote sum ${a + b}`);
    });
  }
  if (offer('increment')) {
    server.registerTool('increment', { description: 'Add one to the counter' }, async () => {
      record('increment');
      state.counter++;
      return text(String(state.counter));
    });
  }
  if (offer('read_counter')) {
    server.registerTool('read_counter', { description: 'Read the counter and the number of cancelled slow calls' }, async () =>
      text(`counter=${state.counter} cancelled=${state.cancelled}`),
    );
  }
  if (offer('fail')) {
    server.registerTool('fail', { description: 'Report an error', inputSchema: { message: z.string() } }, async ({ message }) => ({
      isError: true,
      content: [{ type: 'text' as const, text: `failed on purpose: ${message}` }],
    }));
  }
  if (offer('crash')) {
    server.registerTool('crash', { description: 'Exit the server process in the middle of the call' }, async () => {
      setImmediate(() => process.exit(3));
      return new Promise<never>(() => {});
    });
  }
  if (offer('slow')) {
    server.registerTool('slow', { description: 'Answer after ms milliseconds', inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
      process.stderr.write(`slow call ${ms} started\n`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        extra.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          state.cancelled++;
          resolve();
        });
      });
      return text(`slept ${ms} ms`);
    });
  }
  if (offer('mixed')) {
    server.registerTool('mixed', { description: 'Answer with every kind of content' }, async () => ({
      content: [
        { type: 'text' as const, text: 'a chart follows' },
        { type: 'image' as const, data: PNG_1X1, mimeType: 'image/png' },
        { type: 'resource' as const, resource: { uri: 'file:///notes.txt', mimeType: 'text/plain', text: 'the notes' } },
        { type: 'resource' as const, resource: { uri: 'file:///data.bin', mimeType: 'application/octet-stream', blob: 'AAECAw==' } },
        { type: 'resource_link' as const, uri: 'https://example.com/report', name: 'report', description: 'the full report' },
      ],
    }));
  }
  if (offer('structured')) {
    server.registerTool('structured', { description: 'Answer with structured content only' }, async () => ({ content: [], structuredContent: { answer: 42 } }));
  }
  if (offer('env')) {
    server.registerTool('env', { description: 'Read an environment variable of the server process', inputSchema: { name: z.string() } }, async ({ name }) =>
      text(`${name}=${process.env[name] ?? '(unset)'}`),
    );
  }
  if (offer('add_tool')) {
    server.registerTool('add_tool', { description: 'Add a tool with the given name', inputSchema: { name: z.string() } }, async ({ name }) => {
      server.registerTool(name, { description: `Added at run time: ${name}` }, async () => text(`${name} ran`));
      return text(`added ${name}`);
    });
  }
  return server;
}

export interface RawTool {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
}

/** A server that lists exactly the given tool definitions (any names, any schemas); each call answers with its arguments. */
export function createRawToolsServer(tools: RawTool[]): Server {
  const server = new Server({ name: 'chassis-raw-server', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: tools as any }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => ({
    content: [{ type: 'text', text: `${request.params.name} got ${JSON.stringify(request.params.arguments ?? {})}` }],
  }));
  return server;
}
