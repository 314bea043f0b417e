import { createHash } from 'node:crypto';

/** What OpenAI-compatible providers accept as a function name. */
const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_LENGTH = 64;

/**
 * `server__tool`, made a valid function name: other characters become `_`, and a name longer than
 * 64 characters keeps its first 55 followed by `_` and 8 hex digits of a hash of the full name.
 */
export function qualifiedName(server: string, tool: string): string {
  const full = `${server}__${tool}`;
  const safe = full.replace(/[^A-Za-z0-9_-]/g, '_');
  if (safe.length <= MAX_LENGTH) return safe;
  return `${safe.slice(0, MAX_LENGTH - 9)}_${createHash('sha256').update(full).digest('hex').slice(0, 8)}`;
}

export interface ServerTools {
  server: string;
  tools: readonly string[];
}

export type NameAssignment =
  | { server: string; tool: string; name: string; aliases: string[] }
  | { server: string; tool: string; skipped: string };

/**
 * Decides the name each MCP tool is offered under. A tool keeps its own name when that is a valid
 * function name that no local tool and no other server uses; otherwise it is offered as
 * `server__tool`. The qualified name is always accepted as an alias, so clients can rely on it.
 * Plain names are reserved before qualified ones, so the result does not depend on which server
 * connected first.
 */
export function assignNames(localNames: ReadonlySet<string>, servers: readonly ServerTools[]): NameAssignment[] {
  const servedBy = new Map<string, number>();
  for (const { tools } of servers) for (const tool of new Set(tools)) servedBy.set(tool, (servedBy.get(tool) ?? 0) + 1);

  const taken = new Map<string, string>([...localNames].map((name) => [name, 'a local tool']));
  const results: NameAssignment[] = [];
  const pending: Array<{ server: string; tool: string; qualified: string; plain: boolean }> = [];
  for (const { server, tools } of servers) {
    const seen = new Set<string>();
    for (const tool of tools) {
      if (seen.has(tool)) {
        results.push({ server, tool, skipped: 'the server lists this tool name twice' });
        continue;
      }
      seen.add(tool);
      const plain = FUNCTION_NAME.test(tool) && servedBy.get(tool) === 1 && !localNames.has(tool);
      pending.push({ server, tool, qualified: qualifiedName(server, tool), plain });
    }
  }
  const claim = (entry: (typeof pending)[number], name: string) => {
    const owner = taken.get(name);
    if (owner !== undefined) {
      results.push({ server: entry.server, tool: entry.tool, skipped: `its name '${name}' is already used by ${owner}` });
      return;
    }
    taken.set(name, `MCP server '${entry.server}'`);
    results.push({ server: entry.server, tool: entry.tool, name, aliases: [] });
  };
  for (const entry of pending) if (entry.plain) claim(entry, entry.tool);
  for (const entry of pending) if (!entry.plain) claim(entry, entry.qualified);
  for (const result of results) {
    if (!('name' in result)) continue;
    const qualified = qualifiedName(result.server, result.tool);
    if (qualified === result.name || taken.has(qualified)) continue;
    taken.set(qualified, `MCP server '${result.server}'`);
    result.aliases.push(qualified);
  }
  return results;
}
