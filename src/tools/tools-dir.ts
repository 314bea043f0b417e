import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ToolRegistry } from './registry.js';
import type { Tool } from './types.js';

/** A TOOLS_DIR module that could not be loaded or exports no tool; the message names the file. */
export class ToolsLoadError extends Error {}

const MODULE_FILE = /\.(m?js)$/;

/**
 * Local tools from TOOLS_DIR: every `.js`/`.mjs` file directly in it is imported at start, and
 * every export that is a tool (a `defineTool(...)` result, or an array of them) is taken. A module
 * that fails to import, exports no tool or exports a malformed one stops the start.
 * TypeScript tools are compiled first (or the server runs under tsx, see the README).
 */
export async function loadToolsDir(dir: string, registry: ToolRegistry): Promise<void> {
  let stat;
  try {
    stat = statSync(dir);
  } catch {
    throw new ToolsLoadError(`TOOLS_DIR ${dir} does not exist`);
  }
  if (!stat.isDirectory()) throw new ToolsLoadError(`TOOLS_DIR ${dir} is not a directory`);
  const names = new Map<string, string>(registry.list().map((tool) => [tool.name, 'a built-in tool']));
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && MODULE_FILE.test(entry.name) && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort();
  for (const file of files) {
    const path = join(dir, file);
    let exported: Record<string, unknown>;
    try {
      exported = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
    } catch (error) {
      throw new ToolsLoadError(`${path} could not be loaded: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    }
    const found = Object.entries(exported).flatMap(([exportName, value]) =>
      (Array.isArray(value) ? value : [value]).filter(looksLikeTool).map((tool) => ({ exportName, tool })),
    );
    if (found.length === 0) throw new ToolsLoadError(`${path} exports no tool: export defineTool({ name, description, parameters, run }) results`);
    for (const { exportName, tool } of found) {
      const problem = toolProblem(tool);
      if (problem !== null) throw new ToolsLoadError(`${path}: export "${exportName}": ${problem}`);
      const other = names.get(tool.name);
      if (other !== undefined) throw new ToolsLoadError(`${path}: tool "${tool.name}" is already ${other}`);
      names.set(tool.name, `defined in ${path}`);
      try {
        registry.register({ ...tool, source: 'local' });
      } catch (error) {
        throw new ToolsLoadError(`${path}: tool "${tool.name}": parameters is not a valid JSON Schema: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}

/** Anything shaped like a tool counts; its details are then checked, so a typo is an error, not a skip. */
function looksLikeTool(value: unknown): value is Tool {
  return typeof value === 'object' && value !== null && 'name' in value && 'run' in value;
}

function toolProblem(tool: Tool): string | null {
  if (typeof tool.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(tool.name)) return 'name must be 1-64 letters, digits, "_" or "-"';
  if (typeof tool.description !== 'string' || tool.description.trim() === '') return `tool "${tool.name}": description must be a non-empty string`;
  if (typeof tool.parameters !== 'object' || tool.parameters === null || Array.isArray(tool.parameters)) {
    return `tool "${tool.name}": parameters must be a JSON Schema object`;
  }
  if (typeof tool.run !== 'function') return `tool "${tool.name}": run must be a function`;
  if (tool.timeoutSeconds !== undefined && !(typeof tool.timeoutSeconds === 'number' && tool.timeoutSeconds > 0)) {
    return `tool "${tool.name}": timeoutSeconds must be a positive number`;
  }
  return null;
}
