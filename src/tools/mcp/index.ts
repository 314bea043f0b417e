export { createMcpTools, type McpTools, type McpToolsOptions } from './mcp-tools.js';
export type { McpServerStatus } from './server-handle.js';
