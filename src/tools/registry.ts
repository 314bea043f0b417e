import { Ajv, type ValidateFunction } from 'ajv';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../json-depth.js';
import { badRequest } from '../errors.js';
import type { ToolCall, ToolSpec } from '../model/types.js';
import type { Tool } from './types.js';

interface Entry {
  tool: Tool;
  validate: ValidateFunction;
  spec: ToolSpec;
}

/** The tools a run may offer, after `allowed_tools` was applied. */
export interface ToolSelection {
  specs: ToolSpec[];
  allowed: ReadonlySet<string>;
}

/**
 * Holds every tool (local and MCP) under one name each, plus optional aliases (an MCP tool's
 * qualified `server__tool` name) that resolve to it in `allowed_tools` and in the model's calls.
 * Executing never throws: whatever goes wrong becomes the result text the model reads, so a bad
 * tool call cannot crash a run.
 */
export class ToolRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly aliases = new Map<string, string>();
  private readonly ajv = new Ajv({ allErrors: true, strict: false, coerceTypes: false });
  private selectAllCache: ToolSelection | null = null;

  constructor(private readonly defaultTimeoutSeconds: number) {}

  /** Throws when the parameter schema does not compile. An alias never shadows a tool's own name. */
  register(tool: Tool, aliases: readonly string[] = []): void {
    const validate = this.ajv.compile(tool.parameters);
    this.unregister(tool.name);
    this.entries.set(tool.name, {
      tool,
      validate,
      spec: { type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.parameters } },
    });
    for (const alias of aliases) if (alias !== tool.name) this.aliases.set(alias, tool.name);
    this.selectAllCache = null;
  }

  unregister(name: string): void {
    const entry = this.entries.get(name);
    if (entry === undefined) return;
    this.entries.delete(name);
    // Tools come and go with MCP servers' list changes: drop the compiled schema with the tool.
    this.ajv.removeSchema(entry.tool.parameters);
    for (const [alias, target] of this.aliases) if (target === name) this.aliases.delete(alias);
    this.selectAllCache = null;
  }

  /** The tool's own name for a name or an alias; undefined when neither is known. */
  resolve(name: string): string | undefined {
    return this.entries.has(name) ? name : this.aliases.get(name);
  }

  /**
   * Whether a call to `name` must wait for a human: the tool says so, or the run's approval list
   * names it (by its own name or an alias), or the list is "all". Unknown tools never wait: their
   * call only returns an error text, nothing runs.
   */
  needsApproval(name: string, required: readonly string[] | 'all' | undefined): boolean {
    const own = this.resolve(name);
    if (own === undefined) return false;
    if (required === 'all' || this.entries.get(own)!.tool.needsApproval === true) return true;
    return required !== undefined && required.some((listed) => listed === name || this.resolve(listed) === own);
  }

  list(): Tool[] {
    return [...this.entries.values()].map((entry) => entry.tool);
  }

  /** `null`/absent = every tool, `[]` = none, a list = only those (each must exist; aliases count). */
  select(allowed: readonly string[] | null | undefined): ToolSelection {
    if (allowed === null || allowed === undefined) {
      this.selectAllCache ??= {
        specs: [...this.entries.values()].map((entry) => entry.spec),
        allowed: new Set(this.entries.keys()),
      };
      return this.selectAllCache;
    }
    const unknown = allowed.filter((name) => this.resolve(name) === undefined);
    if (unknown.length > 0) {
      throw badRequest(`allowed_tools names unknown tools: ${unknown.join(', ')} (GET /api/v1/tools lists them)`);
    }
    const names = new Set(allowed.map((name) => this.resolve(name)!));
    return { specs: [...names].map((name) => this.entries.get(name)!.spec), allowed: names };
  }

  async execute(call: ToolCall, allowed: ReadonlySet<string>, runSignal: AbortSignal): Promise<string> {
    const called = call.function.name;
    const name = this.resolve(called) ?? called;
    if (!allowed.has(name)) {
      return this.entries.has(name)
        ? `Error: the tool '${called}' is not allowed in this conversation. Do not call it again; answer without it.`
        : `Error: there is no tool named '${called}'. Available tools: ${[...allowed].join(', ') || 'none'}.`;
    }
    const entry = this.entries.get(name)!;
    let args: unknown;
    if (jsonTooDeep(call.function.arguments)) {
      return `Error: the arguments for '${name}' nest more than ${MAX_JSON_DEPTH} levels deep. Send a flatter JSON object.`;
    }
    try {
      args = call.function.arguments.trim() === '' ? {} : JSON.parse(call.function.arguments);
    } catch {
      return `Error: the arguments for '${name}' are not valid JSON. Send a JSON object matching the tool's parameters.`;
    }
    if (!entry.validate(args)) {
      const problems = (entry.validate.errors ?? [])
        .map((e) => `${e.instancePath || '(arguments)'} ${e.message ?? 'is invalid'}`)
        .join('; ');
      return `Error: invalid arguments for '${name}': ${problems}`;
    }
    const timeoutSeconds = entry.tool.timeoutSeconds ?? this.defaultTimeoutSeconds;
    const controller = new AbortController();
    const onRunAbort = () => controller.abort(runSignal.reason);
    runSignal.addEventListener('abort', onRunAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new Error('tool timeout'));
        resolve(`Error: the tool '${name}' timed out after ${timeoutSeconds} s`);
      }, timeoutSeconds * 1000);
    });
    try {
      const run = Promise.resolve()
        .then(() => entry.tool.run(args, { signal: controller.signal }))
        .then(stringifyResult, (error: unknown) => `Error: the tool '${name}' failed: ${errorText(error)}`);
      return await Promise.race([run, timeout]);
    } finally {
      clearTimeout(timer);
      runSignal.removeEventListener('abort', onRunAbort);
    }
  }
}

function stringifyResult(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.slice(0, 2000);
}
