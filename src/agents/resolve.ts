import type { ValidateFunction } from 'ajv';
import { ChassisError } from '../errors.js';
import type { AgentRunInput, ResponseFormatCheck } from '../agent/run-agent.js';
import type { ToolRegistry, ToolSelection } from '../tools/registry.js';
import type { AgentCatalog, AgentDefinition } from './catalog.js';
import { newSchemaCompiler, serverOfWildcard } from './definition.js';

export const agentNotFound = (name: string, extra = '') =>
  new ChassisError(404, 'AGENT_NOT_FOUND', `No agent named "${name}"${extra} (GET /api/v1/agents lists them)`);

const overrideNotAllowed = (detail: string) => new ChassisError(400, 'AGENT_OVERRIDE_NOT_ALLOWED', detail);

export function findAgent(catalog: AgentCatalog, name: string): AgentDefinition {
  const agent = catalog.get(name);
  if (agent === undefined) throw agentNotFound(name);
  return agent;
}

/** What a completion request may say beside `"agent"`. */
export interface AgentRequestFields {
  system_prompt?: string;
  model?: string;
  allowed_tools?: readonly string[] | null;
  messages?: ReadonlyArray<{ role: string }>;
}

/**
 * The override rules: a request may set temperature and max_tokens and narrow the tools
 * (allowed_tools, checked in agentTools), but the agent's instructions and model are the
 * operator's: `system_prompt`, `model` and system messages are refused rather than ignored.
 */
export function checkAgentOverrides(agent: AgentDefinition, body: AgentRequestFields): void {
  if (body.system_prompt !== undefined) {
    throw overrideNotAllowed(`"system_prompt" cannot be sent with agent "${agent.name}": the agent's instructions are its system prompt`);
  }
  if (body.model !== undefined) throw overrideNotAllowed(`"model" cannot be sent with agent "${agent.name}": the agent decides its model`);
  const system = body.messages?.findIndex((message) => message.role === 'system') ?? -1;
  if (system >= 0) {
    throw overrideNotAllowed(`messages[${system}]: a system message cannot be sent to agent "${agent.name}": the agent's instructions are its system prompt`);
  }
}

/**
 * The agent's tools as they are now (MCP tools come and go with their servers; a tool that is not
 * connected at the moment is left out), narrowed by `allowed_tools`, which may only name tools
 * of the agent.
 */
export function agentTools(agent: AgentDefinition, registry: ToolRegistry, allowed: readonly string[] | null | undefined): ToolSelection {
  const mine = new Set<string>();
  const available = registry.list();
  for (const name of agent.tools) {
    const server = serverOfWildcard(name);
    if (server !== undefined) {
      for (const tool of available) if (tool.source === `mcp:${server}`) mine.add(tool.name);
      continue;
    }
    const resolved = registry.resolve(name);
    if (resolved !== undefined) mine.add(resolved);
  }
  if (allowed === null || allowed === undefined) return registry.select([...mine]);
  const outside = allowed.filter((name) => {
    const resolved = registry.resolve(name);
    return resolved === undefined || !mine.has(resolved);
  });
  if (outside.length > 0) {
    throw overrideNotAllowed(`allowed_tools may only narrow agent "${agent.name}"'s tools; not among them: ${outside.join(', ')}`);
  }
  return registry.select(allowed);
}

/** The agent's instructions, plus (with a response_format) what the final answer must look like. */
export function agentSystemPrompt(agent: AgentDefinition): string {
  if (agent.responseFormat === undefined) return agent.instructions;
  return (
    `${agent.instructions}\n\n` +
    'When you give your final answer (a message without tool calls), it must be only a JSON value, with no other text, ' +
    `that matches this JSON Schema:\n${JSON.stringify(agent.responseFormat)}`
  );
}

/**
 * Checks final answers against an agent's response_format. Compiled once per definition (a hot
 * reload makes a new definition object, so a stale validator is never used).
 */
export class ResponseFormats {
  private readonly compiler = newSchemaCompiler();
  private readonly compiled = new WeakMap<AgentDefinition, ValidateFunction>();

  checkFor(agent: AgentDefinition): ResponseFormatCheck | undefined {
    if (agent.responseFormat === undefined) return undefined;
    let validate = this.compiled.get(agent);
    if (validate === undefined) {
      validate = this.compiler.compile(agent.responseFormat);
      this.compiled.set(agent, validate);
    }
    const check = validate;
    return (text) => {
      const json = withoutCodeFence(text);
      let value: unknown;
      try {
        value = JSON.parse(json);
      } catch {
        return { ok: false, problem: 'the answer is not valid JSON' };
      }
      if (check(value)) return { ok: true, text: json };
      const problems = (check.errors ?? []).slice(0, 10).map((error) => `${error.instancePath || '(root)'} ${error.message ?? 'is invalid'}`);
      return { ok: false, problem: problems.join('; ') };
    };
  }
}

/** Models often wrap JSON in a ```json fence despite being told not to: accept that one wrapping. */
function withoutCodeFence(text: string): string {
  const trimmed = text.trim();
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/.exec(trimmed);
  return fenced === null ? trimmed : fenced[1]!.trim();
}

/**
 * The part of an AgentRunInput an agent decides, with what a request may still override
 * (temperature, max_tokens). Every surface (native API, OpenAI-compatible API) builds its run input
 * from this, so the override rules and the approval list cannot drift apart between them.
 */
export function agentRunSettings(
  agent: AgentDefinition,
  request: { temperature?: number; maxTokens?: number },
  defaultModel: string,
  formats: ResponseFormats,
): Pick<AgentRunInput, 'model' | 'temperature' | 'maxTokens' | 'responseFormat' | 'approvalRequired'> {
  const responseFormat = formats.checkFor(agent);
  return {
    model: agent.model ?? defaultModel,
    temperature: request.temperature ?? agent.temperature,
    maxTokens: request.maxTokens ?? agent.maxTokens,
    ...(responseFormat === undefined ? {} : { responseFormat }),
    ...(agent.approval === 'all' || agent.approval.length > 0 ? { approvalRequired: agent.approval } : {}),
  };
}
