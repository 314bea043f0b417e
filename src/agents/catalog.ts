/**
 * Named agents an operator defines once (files in AGENTS_DIR, or code when embedding).
 * This is the seam other surfaces read (native API, OpenAI-compatible API, playground): they look
 * an agent up by name and hand its definition to the run; they never read files themselves.
 */
export interface AgentDefinition {
  /** Slug, unique: what `"agent": "<name>"` and the OpenAI `model` field name. */
  name: string;
  description: string;
  /** The system prompt. */
  instructions: string;
  /** Upstream model; the deployment's default model when absent. */
  model?: string;
  temperature?: number;
  maxTokens?: number;
  maxSteps?: number;
  /** Tool names (local and MCP); `server__*` selects every tool of one MCP server. */
  tools: readonly string[];
  /** Tool names whose calls wait for a human decision, or every tool. */
  approval: readonly string[] | 'all';
  /** JSON Schema the final answer must match (structured output together with tools). */
  responseFormat?: Record<string, unknown>;
}

export interface AgentCatalog {
  get(name: string): AgentDefinition | undefined;
  list(): readonly AgentDefinition[];
}
