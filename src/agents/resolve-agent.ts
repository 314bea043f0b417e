import type { AgentRunInput } from '../agent/index.js';
import type { ToolRegistry, ToolSelection } from '../tools/index.js';
import type { AgentDefinition } from './catalog.js';
import { agentRunSettings, agentSystemPrompt, agentTools, type ResponseFormats } from './resolve.js';

/** What an agent definition decides about a run; the request adds the conversation, stream and signal. */
export type ResolvedAgent = Pick<AgentRunInput, 'model' | 'temperature' | 'maxTokens' | 'tools' | 'responseFormat'> & {
  /** The agent's system prompt, put first in the context; absent for the default agent. */
  systemPrompt?: string;
  maxSteps: number;
};

/**
 * An agent (or, without one, the default agent: the deployment's model and every server tool)
 * as the settings of a run on a surface that cannot wait for a human (the OpenAI-compatible API):
 * built from the same helpers as the native API (agents/resolve.ts), except that tools whose calls
 * need an approval are not offered, so such a run never pauses. Resolved per request, because MCP
 * tools come and go with their servers.
 */
export function resolveAgent(
  agent: AgentDefinition | undefined,
  registry: ToolRegistry,
  defaults: { model: string; maxSteps: number },
  formats: ResponseFormats,
  request: { temperature?: number; maxTokens?: number },
): ResolvedAgent {
  if (agent === undefined) {
    return { model: defaults.model, temperature: request.temperature, maxTokens: request.maxTokens, tools: withoutApproval(registry.select(undefined), registry, undefined), maxSteps: defaults.maxSteps };
  }
  const { approvalRequired, ...settings } = agentRunSettings(agent, request, defaults.model, formats);
  return {
    ...settings,
    systemPrompt: agentSystemPrompt(agent),
    tools: withoutApproval(agentTools(agent, registry, undefined), registry, approvalRequired),
    maxSteps: agent.maxSteps ?? defaults.maxSteps,
  };
}

function withoutApproval(selection: ToolSelection, registry: ToolRegistry, required: readonly string[] | 'all' | undefined): ToolSelection {
  const kept = [...selection.allowed].filter((name) => !registry.needsApproval(name, required));
  // The same selection (and its cached tool specs) when nothing needs a decision.
  return kept.length === selection.allowed.size ? selection : registry.select(kept);
}
