/**
 * The public entry of the `agent-chassis` package:
 *   import { createChassis, defineTool, Type } from 'agent-chassis';
 * Everything else under src/ is internal and may change between versions.
 */
export { createChassis, type ChassisOptions, type RunningChassis } from './chassis.js';
export { buildApp, type AppOverrides, type Chassis } from './app.js';
export { loadConfig, ConfigError, type Config } from './config.js';
export { defineTool, type Tool, type ToolContext } from './tools/types.js';
/** JSON Schema builders typed like TypeBox's, for tool parameters (`Static<>` infers the argument type). */
export { Type } from './json-schema.js';
export type { AgentCatalog, AgentDefinition } from './agents/catalog.js';
export { ChassisError, type ErrorCode } from './errors.js';
export type { BearerVerifier } from './http/identity.js';
export type { Principal } from './principal.js';
export type { ModelClient } from './model/types.js';
