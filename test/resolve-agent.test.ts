import { describe, expect, it } from 'vitest';
import type { AgentDefinition } from '../src/agents/catalog.js';
import { resolveAgent } from '../src/agents/resolve-agent.js';
import { ResponseFormats } from '../src/agents/resolve.js';
import { ToolRegistry, type Tool } from '../src/tools/index.js';

const tool = (name: string, source = 'local'): Tool => ({ name, description: name, parameters: { type: 'object' }, source, run: () => name });
const registry = new ToolRegistry(5);
registry.register(tool('calc'));
registry.register(tool('shell'));
registry.register(tool('search', 'mcp:web'), ['web__search']);
registry.register(tool('fetch', 'mcp:web'), ['web__fetch']);
const defaults = { model: 'deploy-model', maxSteps: 10 };
const agent = (over: Partial<AgentDefinition>): AgentDefinition => ({ name: 'a', description: '', instructions: 'Do it.', tools: [], approval: [], ...over });

describe('resolveAgent', () => {
  it('the default agent: the deployment model, every tool, no system prompt', () => {
    const resolved = resolveAgent(undefined, registry, defaults, new ResponseFormats(), {});
    expect(resolved).toMatchObject({ model: 'deploy-model', maxSteps: 10 });
    expect(resolved.systemPrompt).toBeUndefined();
    expect([...resolved.tools.allowed].sort()).toEqual(['calc', 'fetch', 'search', 'shell']);
  });

  it('an agent: its settings, its named tools (aliases and server__* expanded), approval tools left out', () => {
    const resolved = resolveAgent(
      agent({ model: 'm', temperature: 0.1, maxTokens: 99, maxSteps: 2, tools: ['calc', 'shell', 'web__*', 'not_there'], approval: ['shell'], responseFormat: { type: 'object' } }),
      registry,
      defaults,
      new ResponseFormats(),
      {},
    );
    expect([...resolved.tools.allowed].sort()).toEqual(['calc', 'fetch', 'search']);
    expect(resolved).toMatchObject({ model: 'm', temperature: 0.1, maxTokens: 99, maxSteps: 2 });
    expect(resolved.systemPrompt).toMatch(/^Do it\./);
    // The agent's format is the loop's answer check, as on the native API.
    expect(resolved.responseFormat?.('{}')).toEqual({ ok: true, text: '{}' });
    expect(resolveAgent(agent({ tools: ['calc'], approval: 'all' }), registry, defaults, new ResponseFormats(), {}).tools.specs).toEqual([]);
    expect(resolveAgent(agent({ tools: ['web__search'] }), registry, defaults, new ResponseFormats(), {}).tools.allowed).toEqual(new Set(['search']));
  });
});
