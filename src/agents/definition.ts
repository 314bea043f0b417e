import { Ajv } from 'ajv';
import type { AgentDefinition } from './catalog.js';

/** What an agent's name may be: it appears in URLs and in the OpenAI `model` field. */
const AGENT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** A tool name as providers accept it, or `server__*` for every tool of one MCP server. */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SERVER_WILDCARD = /^([A-Za-z0-9_-]{1,64})__\*$/;

const FIELDS = ['name', 'description', 'instructions', 'model', 'temperature', 'max_tokens', 'max_steps', 'tools', 'approval', 'response_format'];

/** A problem in one agent definition; `field` is the path inside it (`tools[2]`), or '' for the whole. */
export class AgentDefinitionError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(field === '' ? problem : `${field}: ${problem}`);
  }
}

/** Compiles response_format schemas: strict off so JSON Schema keywords from any draft-07 writer are accepted. */
export function newSchemaCompiler(): Ajv {
  return new Ajv({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false, removeAdditional: false });
}

/**
 * Turns one parsed file (snake_case, as an operator writes it) into an AgentDefinition, or throws
 * an AgentDefinitionError naming the field. Unknown fields are errors too: a typo such as
 * `temprature` must not silently fall back to a default.
 */
export function parseAgentDefinition(raw: unknown, compiler: Ajv): AgentDefinition {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new AgentDefinitionError('', 'the file must hold one object (a mapping of fields)');
  const data = raw as Record<string, unknown>;
  for (const key of Object.keys(data)) {
    if (!FIELDS.includes(key)) throw new AgentDefinitionError(key, `unknown field (known: ${FIELDS.join(', ')})`);
  }
  const name = data.name;
  if (typeof name !== 'string' || !AGENT_NAME.test(name)) {
    throw new AgentDefinitionError('name', 'required: a slug of 1-64 lowercase letters, digits, "-" or "_", starting with a letter or digit');
  }
  const text = (field: string, required: boolean, max: number): string | undefined => {
    const value = data[field];
    if (value === undefined || value === null) {
      if (required) throw new AgentDefinitionError(field, 'required: a non-empty string');
      return undefined;
    }
    if (typeof value !== 'string' || value.trim() === '') throw new AgentDefinitionError(field, 'must be a non-empty string');
    if (value.length > max) throw new AgentDefinitionError(field, `must be at most ${max} characters`);
    return value;
  };
  const number = (field: string, min: number, max: number, integer: boolean): number | undefined => {
    const value = data[field];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
      throw new AgentDefinitionError(field, `must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}`);
    }
    return value;
  };
  const definition: AgentDefinition = {
    name,
    description: text('description', false, 2000) ?? '',
    instructions: text('instructions', true, 200_000)!,
    tools: toolList(data.tools, 'tools'),
    approval: approvalOf(data.approval),
  };
  const model = text('model', false, 256);
  if (model !== undefined) definition.model = model;
  const temperature = number('temperature', 0, 2, false);
  if (temperature !== undefined) definition.temperature = temperature;
  const maxTokens = number('max_tokens', 1, 128_000, true);
  if (maxTokens !== undefined) definition.maxTokens = maxTokens;
  const maxSteps = number('max_steps', 1, 100, true);
  if (maxSteps !== undefined) definition.maxSteps = maxSteps;
  const responseFormat = data.response_format;
  if (responseFormat !== undefined && responseFormat !== null) definition.responseFormat = checkedSchema(responseFormat, compiler);
  return definition;
}

function toolList(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new AgentDefinitionError(field, 'must be a list of tool names');
  const seen = new Set<string>();
  value.forEach((item, index) => {
    if (typeof item !== 'string' || !(TOOL_NAME.test(item) || SERVER_WILDCARD.test(item))) {
      throw new AgentDefinitionError(`${field}[${index}]`, 'must be a tool name (letters, digits, "_", "-"; at most 64) or "<mcp server>__*"');
    }
    if (seen.has(item)) throw new AgentDefinitionError(`${field}[${index}]`, `"${item}" is listed twice`);
    seen.add(item);
  });
  return [...seen];
}

function approvalOf(value: unknown): string[] | 'all' {
  if (value === 'all') return 'all';
  if (typeof value === 'string') throw new AgentDefinitionError('approval', 'must be "all" or a list of tool names');
  return toolList(value, 'approval');
}

function checkedSchema(value: unknown, compiler: Ajv): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AgentDefinitionError('response_format', 'must be a JSON Schema object');
  try {
    compiler.compile(value as Record<string, unknown>);
  } catch (error) {
    throw new AgentDefinitionError('response_format', `is not a valid JSON Schema: ${error instanceof Error ? error.message : String(error)}`);
  }
  return value as Record<string, unknown>;
}

/**
 * Checks an agent's tool names against what this server can offer: local tools by name, `x__*`
 * only for a configured MCP server, and a plain name that is no local tool only when MCP servers
 * are configured (it may be one of theirs, which connect later).
 */
export function checkToolNames(definition: AgentDefinition, localTools: ReadonlySet<string>, mcpServers: ReadonlySet<string>): void {
  const check = (names: readonly string[], field: string) =>
    names.forEach((name, index) => {
      const wildcard = SERVER_WILDCARD.exec(name);
      if (wildcard !== null) {
        if (!mcpServers.has(wildcard[1]!)) throw new AgentDefinitionError(`${field}[${index}]`, `no MCP server named "${wildcard[1]}" is configured`);
        return;
      }
      if (!localTools.has(name) && mcpServers.size === 0) {
        throw new AgentDefinitionError(`${field}[${index}]`, `no tool named "${name}" (local tools: ${[...localTools].join(', ') || 'none'})`);
      }
    });
  check(definition.tools, 'tools');
  if (definition.approval !== 'all') {
    check(definition.approval, 'approval');
    // One MCP tool of a `server__*` the agent has may be named by its qualified name (`server__tool`).
    const servers = definition.tools.map(serverOfWildcard).filter((server) => server !== undefined);
    const mine = (name: string) => definition.tools.includes(name) || servers.some((server) => name.startsWith(`${server}__`) && SERVER_WILDCARD.exec(name) === null);
    definition.approval.forEach((name, index) => {
      if (!mine(name)) throw new AgentDefinitionError(`approval[${index}]`, `"${name}" is not one of the agent's tools`);
    });
  }
}

export const serverOfWildcard = (name: string): string | undefined => SERVER_WILDCARD.exec(name)?.[1];
