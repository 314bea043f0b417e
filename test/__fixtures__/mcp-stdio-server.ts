// The test MCP server over stdio, run as a child process: `node --import tsx mcp-stdio-server.ts`.
//   --only a,b     offer only these tools
//   --label NAME   shown by the whoami tool
//   --hang         read the requests and never answer (not even initialize)

import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createTestMcpServer } from './mcp-test-server.js';

const { values } = parseArgs({
  options: { only: { type: 'string' }, label: { type: 'string' }, hang: { type: 'boolean', default: false } },
});

if (values.hang) {
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
} else {
  const server = createTestMcpServer({ only: values.only?.split(','), label: values.label });
  await server.connect(new StdioServerTransport());
  process.stderr.write(`test server ${values.label ?? ''} ready\n`);
}
