export { ToolRegistry, type ToolSelection } from './registry.js';
export { defineTool, type Tool, type ToolContext } from './types.js';
export { builtinTools } from './builtin/index.js';
