import { existsSync, readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { parse as parseYaml } from 'yaml';
import type { AgentCatalog, AgentDefinition } from './catalog.js';
import { AgentDefinitionError, newSchemaCompiler, parseAgentDefinition } from './definition.js';

const AGENT_FILE = /\.(ya?ml|json)$/i;
/** Editors write a file in several steps (truncate, write, rename): read once they are done. */
const RELOAD_DEBOUNCE_MS = 150;

/** A bad agent file at start; the message names the file and the field. */
export class AgentsLoadError extends Error {}

export interface AgentCatalogOptions {
  /** AGENTS_DIR: missing or empty means no file agents. */
  dir: string;
  /** Agents an embedding product passes in code: always present, and no file may reuse their names. */
  codeAgents?: readonly AgentDefinition[];
  /** Throws an AgentDefinitionError when a definition names tools this server cannot offer. */
  checkTools(definition: AgentDefinition): void;
  log: FastifyBaseLogger;
}

export interface LoadedAgentCatalog extends AgentCatalog {
  /** Starts watching the directory (no-op when it does not exist). */
  watch(): void;
  /** Re-reads the directory now; what the watcher calls after its debounce. */
  reload(): void;
  close(): void;
}

interface FileAgent {
  definition: AgentDefinition;
  /** The file's text this definition came from: an unchanged file is not parsed again. */
  text: string;
}

/**
 * The agents of one deployment: code agents plus one per file of AGENTS_DIR. At start every file
 * must be valid (the first problem stops the start); while running, a file that turns bad keeps
 * its last good version and the reason is logged, a deleted file removes its agent.
 */
export function loadAgentCatalog(options: AgentCatalogOptions): LoadedAgentCatalog {
  const { dir, log } = options;
  const compiler = newSchemaCompiler();
  const codeAgents = new Map<string, AgentDefinition>();
  for (const agent of options.codeAgents ?? []) {
    if (codeAgents.has(agent.name)) throw new AgentsLoadError(`agent "${agent.name}" is passed in code twice`);
    try {
      // Code agents take the same checks as files (written in the file's field names).
      parseAgentDefinition(fileFieldsOf(agent), compiler);
      options.checkTools(agent);
    } catch (error) {
      throw new AgentsLoadError(`agent "${agent.name}" (passed in code): ${error instanceof Error ? error.message : String(error)}`);
    }
    codeAgents.set(agent.name, agent);
  }

  if (existsSync(dir) && !isDirectory(dir)) throw new AgentsLoadError(`AGENTS_DIR ${dir} is not a directory`);
  let files = new Map<string, FileAgent>();
  let byName = new Map<string, AgentDefinition>();
  let listed: AgentDefinition[] = [];

  function readFile(file: string, previous: FileAgent | undefined): FileAgent {
    const path = join(dir, file);
    const text = readFileSync(path, 'utf8');
    if (previous !== undefined && previous.text === text) return previous;
    let raw: unknown;
    try {
      raw = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text, { prettyErrors: false });
    } catch (error) {
      throw new AgentDefinitionError('', `not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    }
    const definition = parseAgentDefinition(raw, compiler);
    options.checkTools(definition);
    if (codeAgents.has(definition.name)) throw new AgentDefinitionError('name', `"${definition.name}" is already an agent passed in code`);
    return { definition, text };
  }

  /** `strict` (at start): the first problem throws. Otherwise a bad file keeps its last good version. */
  function load(strict: boolean): void {
    const next = new Map<string, FileAgent>();
    const names = new Map<string, string>();
    for (const file of agentFiles(dir)) {
      const previous = files.get(file);
      let loaded: FileAgent | undefined;
      try {
        loaded = readFile(file, previous);
        const other = names.get(loaded.definition.name);
        if (other !== undefined) throw new AgentDefinitionError('name', `"${loaded.definition.name}" is already defined in ${join(dir, other)}`);
      } catch (error) {
        // Deleted between listing and reading: the next change event sees it gone.
        if (!strict && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        const where = `${join(dir, file)}: ${error instanceof Error ? error.message : String(error)}`;
        if (strict) throw new AgentsLoadError(where);
        const kept = previous !== undefined && names.get(previous.definition.name) === undefined ? previous : undefined;
        log.warn({ file: join(dir, file) }, `agent file not loaded: ${where}${kept === undefined ? '' : ' (the last good version stays in use)'}`);
        loaded = kept;
      }
      if (loaded === undefined) continue;
      next.set(file, loaded);
      names.set(loaded.definition.name, file);
    }
    const changed = next.size !== files.size || [...next].some(([file, agent]) => files.get(file) !== agent);
    files = next;
    byName = new Map([...codeAgents, ...[...next.values()].map((agent) => [agent.definition.name, agent.definition] as const)]);
    listed = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (changed && !strict) log.info({ agents: listed.map((agent) => agent.name) }, 'agents reloaded');
  }

  load(true);

  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  const reload = () => {
    try {
      load(false);
    } catch (error) {
      // The directory itself went away or became unreadable: keep what we have.
      log.warn({ err: error, dir }, 'agents directory could not be read; the loaded agents stay in use');
    }
  };

  return {
    get: (name) => byName.get(name),
    list: () => listed,
    reload,
    watch() {
      if (watcher !== undefined || !isDirectory(dir)) return;
      watcher = watch(dir, { persistent: false }, () => {
        clearTimeout(timer);
        timer = setTimeout(reload, RELOAD_DEBOUNCE_MS);
      });
      watcher.on('error', (error) => log.warn({ err: error, dir }, 'watching the agents directory failed; changes need a restart'));
    },
    close() {
      clearTimeout(timer);
      watcher?.close();
      watcher = undefined;
    },
  };
}

function isDirectory(dir: string): boolean {
  return existsSync(dir) && statSync(dir).isDirectory();
}

function agentFiles(dir: string): string[] {
  if (!isDirectory(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && AGENT_FILE.test(entry.name) && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort();
}

/** A code definition in the file's field names, so one parser checks both. */
function fileFieldsOf(agent: AgentDefinition): Record<string, unknown> {
  return {
    name: agent.name,
    description: agent.description === '' ? undefined : agent.description,
    instructions: agent.instructions,
    model: agent.model,
    temperature: agent.temperature,
    max_tokens: agent.maxTokens,
    max_steps: agent.maxSteps,
    tools: agent.tools,
    approval: agent.approval,
    response_format: agent.responseFormat,
  };
}
