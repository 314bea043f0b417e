import { describe, expect, it } from 'vitest';
import { runAgent, type AgentDeps, type AgentEvent, type AgentRunInput, type Checkpoint, type Resume } from '../src/agent/index.js';
import type { AssistantMessage, ModelClient, ModelRequest } from '../src/model/types.js';
import { builtinTools, ToolRegistry } from '../src/tools/index.js';
import { loadConfig } from '../src/config.js';
import { recordingTool } from './support/approvals.js';

// The loop's side of approvals, for what only an agent definition sets (`approvalRequired`, filled
// from an agent file's `approval` on another branch): which calls wait, and going on from a checkpoint.
function scriptedModel(answers: AssistantMessage[]): ModelClient & { requests: Array<Omit<ModelRequest, 'signal'>> } {
  const requests: Array<Omit<ModelRequest, 'signal'>> = [];
  return {
    requests,
    async *call(request) {
      const { signal: _signal, ...rest } = request;
      requests.push(structuredClone(rest));
      yield [{ type: 'end', message: answers.shift()!, finishReason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }];
    },
    async close() {},
  };
}

const calling = (...names: string[]): AssistantMessage => ({
  role: 'assistant',
  content: null,
  tool_calls: names.map((name, index) => ({ id: `call_${index}`, type: 'function', function: { name, arguments: name === 'calculate' ? '{"operation":"add","a":1,"b":2}' : '{"path":"/x"}' } })),
});

/** Every event of one run of the loop, its ending last. */
async function collect(input: AgentRunInput, deps: AgentDeps, resume?: Resume): Promise<AgentEvent[]> {
  const all: AgentEvent[] = [];
  all.push(await runAgent(input, deps, (event) => all.push(event), undefined, resume));
  return all;
}

function setup(approvalRequired: AgentRunInput['approvalRequired'], allowed?: string[]) {
  const tools = new ToolRegistry(5);
  for (const tool of builtinTools) tools.register(tool);
  const recorder = recordingTool('delete_file', false);
  tools.register(recorder);
  const input = (model: ModelClient): { input: AgentRunInput; deps: { model: ModelClient; tools: ToolRegistry; maxSteps: number } } => ({
    input: { context: [{ role: 'user', content: 'hi' }], model: 'm', tools: tools.select(allowed), stream: false, signal: new AbortController().signal, approvalRequired },
    deps: { model, tools, maxSteps: 5 },
  });
  return { tools, recorder, input };
}

describe('the loop and approvals', () => {
  it('approvalRequired names a tool: its call pauses, the other call of the step runs at once', async () => {
    const { recorder, input } = setup(['calculate']);
    const model = scriptedModel([calling('calculate', 'delete_file')]);
    const { input: run, deps } = input(model);
    const events = await collect(run, deps);
    const paused = events.at(-1) as Extract<AgentEvent, { type: 'paused' }>;
    expect(paused.type).toBe('paused');
    expect(paused.checkpoint.pending.map((call) => call.function.name)).toEqual(['calculate']);
    expect(paused.checkpoint.ran.map((result) => result.tool_call_id)).toEqual(['call_1']);
    expect(recorder.calls).toEqual([{ path: '/x' }]);
    expect(model.requests).toHaveLength(1);
  });

  it('"all" makes every allowed call wait; calls to unknown or disallowed tools never wait (nothing would run)', async () => {
    const { recorder, input } = setup('all', ['delete_file']);
    const model = scriptedModel([calling('delete_file', 'calculate', 'nope')]);
    const { input: run, deps } = input(model);
    const paused = (await collect(run, deps)).at(-1) as Extract<AgentEvent, { type: 'paused' }>;
    expect(paused.checkpoint.pending.map((call) => call.function.name)).toEqual(['delete_file']);
    expect(paused.checkpoint.ran.map((result) => result.content)).toEqual([expect.stringContaining('not allowed'), expect.stringContaining('no tool named')]);
    expect(recorder.calls).toEqual([]);
  });

  it('no approval list and no needsApproval: nothing waits (today\'s behaviour)', async () => {
    const { input } = setup(undefined);
    const model = scriptedModel([calling('calculate'), { role: 'assistant', content: 'three' }]);
    const { input: run, deps } = input(model);
    const events = await collect(run, deps);
    expect(events.map((event) => event.type)).toEqual(['tool_call', 'tool_result', 'done']);
  });

  it('resumes from a checkpoint: results in call order, the denied call refused, the ran call not run again, usage summed', async () => {
    const { recorder, input } = setup(['calculate']);
    const first = scriptedModel([calling('calculate', 'delete_file')]);
    const { input: run, deps } = input(first);
    const checkpoint = ((await collect(run, deps)).at(-1) as { checkpoint: Checkpoint }).checkpoint;
    const revived = JSON.parse(JSON.stringify(checkpoint)) as Checkpoint; // as stored in the database
    const second = scriptedModel([{ role: 'assistant', content: 'ok' }]);
    const again = input(second);
    const events = await collect(again.input, again.deps, { checkpoint: revived, decisions: new Map([['call_0', { approved: false, reason: 'not now' }]]) });
    expect(events.map((event) => event.type)).toEqual(['tool_result', 'done']);
    expect(recorder.calls).toHaveLength(1);
    const sent = second.requests[0]!.messages;
    expect(sent.slice(-3).map((message) => (message.role === 'tool' ? message.content : message.role))).toEqual(['assistant', 'Denied by the user: not now', 'ran delete_file on /x']);
    const done = events.at(-1) as Extract<AgentEvent, { type: 'done' }>;
    expect(done.usage.total_tokens).toBe(4);
    expect(done.messages.map((message) => message.role)).toEqual(['assistant', 'tool', 'tool', 'assistant']);
  });
});

describe('APPROVAL_TIMEOUT_SECONDS', () => {
  it('defaults to 3600, accepts 1 and 604800, refuses 0.5, 604801 and text naming the variable', () => {
    expect(loadConfig({}).approvalTimeoutSeconds).toBe(3600);
    expect(loadConfig({ APPROVAL_TIMEOUT_SECONDS: '1' }).approvalTimeoutSeconds).toBe(1);
    expect(loadConfig({ APPROVAL_TIMEOUT_SECONDS: '604800' }).approvalTimeoutSeconds).toBe(604800);
    for (const bad of ['0.5', '604801', 'soon']) expect(() => loadConfig({ APPROVAL_TIMEOUT_SECONDS: bad })).toThrow(/APPROVAL_TIMEOUT_SECONDS/);
  });
});
