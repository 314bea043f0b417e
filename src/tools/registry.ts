import { Ajv, type ValidateFunction } from 'ajv';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../json-depth.js';
import { badRequest } from '../errors.js';
import type { RunSignal } from '../run-signal.js';
import type { ToolCall, ToolSpec } from '../model/types.js';
import type { Tool } from './types.js';

interface Entry {
  tool: Tool;
  validate: ValidateFunction;
  spec: ToolSpec;
}

/** How a tool call ended, for metrics and traces (the model only ever sees the result text). */
export type ToolOutcome = 'ok' | 'error' | 'timeout' | 'not_allowed' | 'unknown_tool' | 'invalid_arguments';

export interface ToolExecution {
  text: string;
  outcome: ToolOutcome;
}

/**
 * Wraps every tool call (metrics, tracing): `tool` is the registered name, or null when the model
 * named no known tool. It must call `next` once and return what it returns.
 */
export type ToolInterceptor = (call: ToolCall, tool: Tool | null, next: () => Promise<ToolExecution>) => Promise<ToolExecution>;

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
  // Formats are not checked (this Ajv has none, so it would print "unknown format … ignored" to the
  // console for every MCP schema using one, outside our JSON log); the MCP server checks its own input.
  private readonly ajv = new Ajv({ allErrors: true, strict: false, coerceTypes: false, validateFormats: false });
  private selectAllCache: ToolSelection | null = null;
  private readonly interceptors: ToolInterceptor[] = [];

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
   * names it (by its own name, an alias, or `server__*` for an MCP server's tools), or the list is "all". Unknown tools never wait: their
   * call only returns an error text, nothing runs.
   */
  needsApproval(name: string, required: readonly string[] | 'all' | undefined): boolean {
    const own = this.resolve(name);
    if (own === undefined) return false;
    if (required === 'all' || this.entries.get(own)!.tool.needsApproval === true) return true;
    if (required === undefined) return false;
    const source = this.entries.get(own)!.tool.source;
    // `server__*` (an agent's way to name every tool of one MCP server) covers that server's tools.
    return required.some((listed) => listed === name || this.resolve(listed) === own || (listed.endsWith('__*') && source === `mcp:${listed.slice(0, -3)}`));
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
      // A plain name several MCP servers offer means none of them: say which qualified names exist.
      const known = [...this.entries.keys(), ...this.aliases.keys()];
      const ambiguous = unknown.map((name) => ({ name, qualified: [...new Set(known.filter((candidate) => candidate.endsWith(`__${name}`)))].sort() }));
      const hints = ambiguous.filter((entry) => entry.qualified.length > 0);
      if (hints.length > 0) {
        throw badRequest(
          `allowed_tools: ${hints.map((entry) => `'${entry.name}' is offered by more than one MCP server; name one of ${entry.qualified.join(', ')}`).join('; ')}`,
        );
      }
      throw badRequest(`allowed_tools names unknown tools: ${unknown.join(', ')} (GET /api/v1/tools lists them)`);
    }
    const names = new Set(allowed.map((name) => this.resolve(name)!));
    return { specs: [...names].map((name) => this.entries.get(name)!.spec), allowed: names };
  }

  /** Adds a wrapper around every later tool call; the first added is the outermost. */
  intercept(interceptor: ToolInterceptor): void {
    this.interceptors.push(interceptor);
  }

  async execute(call: ToolCall, allowed: ReadonlySet<string>, runSignal: RunSignal): Promise<string> {
    if (this.interceptors.length === 0) return (await this.executeCall(call, allowed, runSignal)).text;
    const tool = this.entries.get(this.resolve(call.function.name) ?? '')?.tool ?? null;
    let next = () => this.executeCall(call, allowed, runSignal);
    for (let index = this.interceptors.length - 1; index >= 0; index--) {
      const interceptor = this.interceptors[index]!;
      const inner = next;
      next = () => interceptor(call, tool, inner);
    }
    return (await next()).text;
  }

  private async executeCall(call: ToolCall, allowed: ReadonlySet<string>, runSignal: RunSignal): Promise<ToolExecution> {
    const called = call.function.name;
    const name = this.resolve(called) ?? called;
    if (!allowed.has(name)) {
      return this.entries.has(name)
        ? { outcome: 'not_allowed', text: `Error: the tool '${called}' is not allowed in this conversation. Do not call it again; answer without it.` }
        : { outcome: 'unknown_tool', text: `Error: there is no tool named '${called}'. Available tools: ${[...allowed].join(', ') || 'none'}.` };
    }
    const entry = this.entries.get(name)!;
    let args: unknown;
    if (jsonTooDeep(call.function.arguments)) {
      return { outcome: 'invalid_arguments', text: `Error: the arguments for '${name}' nest more than ${MAX_JSON_DEPTH} levels deep. Send a flatter JSON object.` };
    }
    try {
      args = call.function.arguments.trim() === '' ? {} : JSON.parse(call.function.arguments);
    } catch {
      return { outcome: 'invalid_arguments', text: `Error: the arguments for '${name}' are not valid JSON. Send a JSON object matching the tool's parameters.` };
    }
    if (!entry.validate(args)) {
      const problems = (entry.validate.errors ?? [])
        .map((e) => `${e.instancePath || '(arguments)'} ${e.message ?? 'is invalid'}`)
        .join('; ');
      return { outcome: 'invalid_arguments', text: `Error: invalid arguments for '${name}': ${problems}` };
    }
    const timeoutSeconds = entry.tool.timeoutSeconds ?? this.defaultTimeoutSeconds;
    const controller = new AbortController();
    const onRunAbort = () => controller.abort(runSignal.reason);
    runSignal.addEventListener('abort', onRunAbort);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ToolExecution>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new Error('tool timeout'));
        resolve({ outcome: 'timeout', text: `Error: the tool '${name}' timed out after ${timeoutSeconds} s` });
      }, timeoutSeconds * 1000);
    });
    try {
      const run = Promise.resolve()
        .then(() => entry.tool.run(args, { signal: controller.signal }))
        .then(
          (value): ToolExecution => ({ outcome: 'ok', text: stringifyResult(value) }),
          (error: unknown): ToolExecution => ({ outcome: 'error', text: `Error: the tool '${name}' failed: ${errorText(error)}` }),
        );
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
