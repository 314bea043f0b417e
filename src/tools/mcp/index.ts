import { readMcpConfig } from './config-file.js';
import type { McpTools, McpToolsOptions } from './mcp-tools.js';

export type { McpTools, McpToolsOptions } from './mcp-tools.js';
export type { McpServerStatus } from './server-handle.js';

const noMcpTools: McpTools = { start() {}, settled: async () => {}, status: () => [], close: async () => {} };

/**
 * Reads MCP_CONFIG_PATH. The MCP SDK (and its schema library) is loaded only when the file names
 * servers: without MCP, a server never holds it in memory.
 */
export async function createMcpTools(options: McpToolsOptions): Promise<McpTools> {
  const { log } = options;
  const config = readMcpConfig(options.configPath, options.variables);
  if (config.status === 'missing') {
    log.info({ path: options.configPath }, 'no MCP config file; running without MCP tools');
    return noMcpTools;
  }
  if (config.status === 'invalid') {
    log.error({ path: options.configPath }, `MCP config file ${options.configPath} ${config.reason}; running without MCP tools`);
    return noMcpTools;
  }
  for (const { name, reason, expected } of config.skipped) {
    // An unset ${VAR} is how an example entry stays off until its token is given: not an error.
    if (expected) log.info({ mcpServer: name }, `MCP server '${name}' skipped: ${reason}`);
    else log.error({ mcpServer: name }, `MCP server '${name}' skipped: ${reason}`);
  }
  if (config.servers.length === 0) return noMcpTools;
  const { connectMcpServers } = await import('./mcp-tools.js');
  return connectMcpServers(config.servers, options);
}
