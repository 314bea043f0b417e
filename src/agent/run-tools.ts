import type { ToolCall, ToolMessage } from '../model/types.js';
import type { ToolRegistry } from '../tools/registry.js';
import type { RunSignal } from '../run-signal.js';

/** Runs one model message's tool calls at once; results come back in call order, as the provider expects. */
export async function runToolCalls(
  calls: readonly ToolCall[],
  registry: ToolRegistry,
  allowed: ReadonlySet<string>,
  signal: RunSignal,
): Promise<ToolMessage[]> {
  const results = await Promise.all(calls.map((call) => registry.execute(call, allowed, signal)));
  return calls.map((call, index) => ({ role: 'tool', tool_call_id: call.id, name: call.function.name, content: results[index]! }));
}
