import type { AgentRunInput } from '../agent/index.js';
import type { ToolRegistry } from '../tools/index.js';
import type { AgentDefinition } from './catalog.js';

/** What an agent definition decides about a run; the request adds the conversation, stream and signal. */
export type ResolvedAgent = Pick<AgentRunInput, 'model' | 'temperature' | 'maxTokens' | 'tools' | 'responseFormat'> & {
  /** The definition's instructions, put first in the context; absent for the default agent. */
  systemPrompt?: string;
  maxSteps: number;
};

/**
 * Resolves an agent (or, without one, the default agent: the deployment's model and every server
 * tool) into the settings of the run the loop takes. Resolved per request, because MCP tools
 * come and go with their servers. Tools whose calls need a human approval are not offered: this
 * server has no approval step yet, and running them unasked would defeat the definition.
 */
export function resolveAgent(agent: AgentDefinition | undefined, registry: ToolRegistry, defaults: { model: string; maxSteps: number }): ResolvedAgent {
  if (agent === undefined) return { model: defaults.model, tools: registry.select(undefined), maxSteps: defaults.maxSteps };
  const names = new Set<string>();
  for (const name of agent.tools) {
    if (name.endsWith('__*')) {
      // Every tool one MCP server currently offers.
      const source = `mcp:${name.slice(0, -3)}`;
      for (const tool of registry.list()) if (tool.source === source) names.add(tool.name);
    } else if (registry.resolve(name) !== undefined) {
      names.add(registry.resolve(name)!);
    }
    // A named tool the registry does not hold now (an MCP server still connecting) is left out
    // rather than failing the request.
  }
  if (agent.approval === 'all') names.clear();
  else for (const name of agent.approval) names.delete(registry.resolve(name) ?? name);
  return {
    systemPrompt: agent.instructions === '' ? undefined : agent.instructions,
    model: agent.model ?? defaults.model,
    temperature: agent.temperature,
    maxTokens: agent.maxTokens,
    tools: registry.select([...names]),
    responseFormat:
      agent.responseFormat === undefined ? undefined : { type: 'json_schema', json_schema: { name: `${agent.name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}_answer`, schema: agent.responseFormat } },
    maxSteps: agent.maxSteps ?? defaults.maxSteps,
  };
}
