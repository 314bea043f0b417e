import type { Static, TSchema } from 'typebox';

export interface ToolContext {
  /** Aborted when the call times out or the run ends early; long tools should stop when it fires. */
  signal: AbortSignal;
}

export interface Tool<Args = any> {
  name: string;
  description: string;
  /** JSON Schema of the arguments object, sent to the model and checked before `run`. */
  parameters: Record<string, unknown>;
  /** Where the tool comes from: `local`, or `mcp:<server>`. */
  source: string;
  /** Per-call timeout; defaults to TOOL_TIMEOUT_SECONDS. */
  timeoutSeconds?: number;
  /** A human must approve each call before it runs (POST /api/v1/agent/runs/{run_id}/approvals/{approval_id}). */
  needsApproval?: boolean;
  /** The result goes back to the model: strings as they are, anything else as JSON. */
  run(args: Args, context: ToolContext): unknown;
}

/** Declares a local tool whose argument type follows from its TypeBox schema. */
export function defineTool<S extends TSchema>(tool: {
  name: string;
  description: string;
  parameters: S;
  timeoutSeconds?: number;
  needsApproval?: boolean;
  run(args: Static<S>, context: ToolContext): unknown;
}): Tool<Static<S>> {
  return { ...tool, parameters: tool.parameters as unknown as Record<string, unknown>, source: 'local' };
}
