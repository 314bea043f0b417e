import { describe, expect, it } from 'vitest';
import type { AgentDefinition } from '../src/agents/catalog.js';
import { agentRunSettings, ResponseFormats } from '../src/agents/resolve.js';

const base: AgentDefinition = { name: 'a', description: '', instructions: 'x', tools: ['calculate', 'get_server_time'], approval: [] };
const settings = (agent: Partial<AgentDefinition>, request: { temperature?: number; maxTokens?: number } = {}) =>
  agentRunSettings({ ...base, ...agent }, request, 'default-model', new ResponseFormats());

// The seam the approvals work (issue 14, section 3) reads: an agent's `approval` reaches the loop as
// AgentRunInput.approvalRequired, in exactly this shape.
describe('agentRunSettings: what an agent puts into the AgentRunInput', () => {
  it('approval becomes approvalRequired: a list as it is, "all" as "all", an empty list not at all', () => {
    expect(settings({ approval: ['calculate'] }).approvalRequired).toEqual(['calculate']);
    expect(settings({ approval: 'all' }).approvalRequired).toBe('all');
    expect('approvalRequired' in settings({ approval: [] })).toBe(false);
  });

  it("the agent's model, else the default; a request's temperature and max_tokens win over the agent's", () => {
    expect(settings({})).toMatchObject({ model: 'default-model', temperature: undefined, maxTokens: undefined });
    expect(settings({ model: 'm', temperature: 0.1, maxTokens: 50 })).toMatchObject({ model: 'm', temperature: 0.1, maxTokens: 50 });
    expect(settings({ temperature: 0.1, maxTokens: 50 }, { temperature: 0, maxTokens: 1 })).toMatchObject({ temperature: 0, maxTokens: 1 });
  });

  it('a response_format becomes a check: fenced JSON passes and is unwrapped, other answers name the problem', () => {
    const check = settings({ responseFormat: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } } }).responseFormat!;
    expect(check('```json\n{"n": 1}\n```')).toEqual({ ok: true, text: '{"n": 1}' });
    expect(check('{"n": 1.5}')).toEqual({ ok: false, problem: '/n must be integer' });
    expect(check('{}')).toEqual({ ok: false, problem: "(root) must have required property 'n'" });
    expect(check('sure! {"n": 1}')).toEqual({ ok: false, problem: 'the answer is not valid JSON' });
    expect(settings({}).responseFormat).toBeUndefined();
  });
});
