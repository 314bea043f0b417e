export { ToolRegistry, type ToolSelection } from './registry.js';
export { defineTool, type Tool, type ToolContext } from './types.js';
export { builtinTools } from './builtin/index.js';
export { createMcpTools, type McpTools, type McpServerStatus } from './mcp/index.js';
export { withoutAddresses as scrubAddresses } from './mcp/addresses.js';
