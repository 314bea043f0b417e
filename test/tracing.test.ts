import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, startApp } from './support/app.js';
import { startStreamableHttpMcp, type TestHttpMcp } from './support/mcp-servers.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';
import { decide, finished, recordingTool, waitForRun } from './support/approvals.js';
import { sessionEnv } from './support/sessions.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const PROMPT = 'What is two plus two, secretly?';
const ANSWER = 'It is four, confidentially.';
const CONTENT_KEYS = ['gen_ai.input.messages', 'gen_ai.output.messages', 'gen_ai.tool.call.arguments', 'gen_ai.tool.call.result'];

let fake: FakeUpstream;
let mcpServer: TestHttpMcp;
let dir: string;
beforeAll(async () => {
  fake = await startFakeUpstream();
  mcpServer = await startStreamableHttpMcp();
  dir = mkdtempSync(join(tmpdir(), 'chassis-tracing-'));
});
afterAll(async () => {
  await fake.close();
  await mcpServer.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs one tool run (local calculate) with an incoming traceparent; the app is closed so its spans are flushed. */
async function tracedToolRun(env: Record<string, string>): Promise<{ receiver: OtlpReceiver; logs: Array<Record<string, any>> }> {
  const receiver = await startOtlpReceiver();
  const t = await startApp({ OPENAI_BASE_URL: fake.url, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, MCP_CONFIG_PATH: join(dir, 'none.json'), ...env });
  try {
    fake.reset();
    fake.script(
      { kind: 'tool_calls', calls: [{ id: 'call_1', name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' }], usage: { prompt_tokens: 7, completion_tokens: 3 } },
      { kind: 'text', content: ANSWER, usage: { prompt_tokens: 11, completion_tokens: 5 } },
    );
    const response = await post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: PROMPT }], model: 'm-traced' }, { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` });
    expect(response.status).toBe(200);
  } finally {
    await t.close();
    await receiver.close();
  }
  return { receiver, logs: t.logs };
}

function only(spans: ReceivedSpan[], predicate: (span: ReceivedSpan) => boolean, what: string): ReceivedSpan {
  const found = spans.filter(predicate);
  expect(found, what).toHaveLength(1);
  return found[0]!;
}

describe('tracing (OTLP/HTTP JSON to a real receiver)', () => {
  it('sends the span tree of a tool run with GenAI attributes, continuing the caller\'s trace, without content', async () => {
    const { receiver, logs } = await tracedToolRun({});
    const spans = receiver.spans;
    expect(receiver.contentTypes.every((type) => type.startsWith('application/json'))).toBe(true);
    expect(spans.every((span) => span.traceId === TRACE_ID)).toBe(true);
    expect(spans[0]!.resource['service.name']).toBe('agent-chassis');

    const http = only(spans, (span) => span.name === 'POST /api/v1/agent/completion', 'HTTP span');
    expect(http.parentSpanId).toBe(CALLER_SPAN);
    expect(http.kind).toBe(2); // SERVER
    expect(http.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/api/v1/agent/completion', 'http.response.status_code': 200 });

    const run = only(spans, (span) => span.name === 'invoke_agent', 'run span');
    expect(run.parentSpanId).toBe(http.spanId);
    expect(run.attributes).toMatchObject({
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.request.model': 'm-traced',
      'gen_ai.usage.input_tokens': 18,
      'gen_ai.usage.output_tokens': 8,
    });

    const chats = spans.filter((span) => span.name === 'chat m-traced');
    expect(chats).toHaveLength(2);
    for (const chat of chats) {
      expect(chat.parentSpanId).toBe(run.spanId);
      expect(chat.kind).toBe(3); // CLIENT
      expect(chat.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'm-traced' });
    }
    expect(chats.map((chat) => chat.attributes['gen_ai.response.finish_reasons'])).toEqual(expect.arrayContaining([['tool_calls'], ['stop']]));
    expect(chats.map((chat) => chat.attributes['gen_ai.usage.input_tokens']).sort()).toEqual([11, 7]);

    const tool = only(spans, (span) => span.name === 'execute_tool calculate', 'tool span');
    expect(tool.parentSpanId).toBe(run.spanId);
    expect(tool.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'calculate', 'gen_ai.tool.call.id': 'call_1', 'gen_ai.tool.type': 'function' });

    // No prompt, answer or tool arguments leave the server unless asked for.
    for (const span of spans) for (const key of CONTENT_KEYS) expect(span.attributes).not.toHaveProperty(key);
    const sent = receiver.bodies.join('\n');
    expect(sent).not.toContain('secretly');
    expect(sent).not.toContain('confidentially');
    expect(sent).not.toContain('"a":2');

    // The request's log line names its trace and span.
    const line = logs.find((entry) => entry.msg === 'request' && entry.route === '/api/v1/agent/completion');
    expect(line).toMatchObject({ trace_id: TRACE_ID, span_id: http.spanId });
  });

  it('spans a run resumed after an approval as a second invoke_agent in the same trace, with its chat and execute_tool children', async () => {
    const receiver = await startOtlpReceiver();
    const tool = recordingTool('delete_file');
    let paused: any;
    const t = await startApp(sessionEnv(fake.url, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, MCP_CONFIG_PATH: join(dir, 'none.json') }), { tools: [tool] });
    try {
      fake.reset();
      fake.script(
        { kind: 'tool_calls', calls: [{ id: 'call_1', name: 'delete_file', arguments: '{"path":"/tmp/a"}' }], usage: { prompt_tokens: 10, completion_tokens: 5 } },
        { kind: 'text', content: 'Deleted.', usage: { prompt_tokens: 20, completion_tokens: 2 } },
      );
      const started = await post(`${t.url}/api/v1/agent/completion`, { message: 'clean up', model: 'm-approve' }, { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` });
      paused = await started.json();
      expect(paused.stop_reason).toBe('approval_required');
      expect((await decide(t.url, paused.run_id, paused.pending_approvals[0].approval_id, { decision: 'approve' })).status).toBe(200);
      expect((await waitForRun(t.url, paused.run_id, finished)).status).toBe('completed');
    } finally {
      await t.close();
      await receiver.close();
    }
    const spans = receiver.spans;
    const http = only(spans, (span) => span.name === 'POST /api/v1/agent/completion', 'HTTP span');
    const runs = spans.filter((span) => span.name === 'invoke_agent');
    expect(runs).toHaveLength(2);
    const first = runs.find((span) => span.attributes['chassis.run.resumed'] === undefined)!;
    const resumed = only(runs, (span) => span.attributes['chassis.run.resumed'] === true, 'resumed run span');
    // Both segments are in the caller's trace, under the request that started the run.
    for (const run of [first, resumed]) {
      expect(run.traceId).toBe(TRACE_ID);
      expect(run.parentSpanId).toBe(http.spanId);
      expect(run.attributes['chassis.run.id']).toBe(paused.run_id);
    }
    expect(first.attributes).toMatchObject({ 'chassis.run.status': 'waiting', 'gen_ai.response.finish_reasons': ['approval_required'], 'gen_ai.usage.input_tokens': 10 });
    // The resumed segment reports what it used, not the run's total again.
    expect(resumed.attributes).toMatchObject({ 'chassis.run.status': 'completed', 'gen_ai.usage.input_tokens': 20, 'gen_ai.usage.output_tokens': 2, 'gen_ai.conversation.id': paused.session_id });

    const chats = spans.filter((span) => span.name === 'chat m-approve');
    expect(chats.map((chat) => chat.parentSpanId).sort()).toEqual([first.spanId, resumed.spanId].sort());
    const executed = only(spans, (span) => span.name === 'execute_tool delete_file', 'tool span');
    expect(executed.parentSpanId).toBe(resumed.spanId);
    expect(executed.traceId).toBe(TRACE_ID);
    expect(tool.calls).toEqual([{ path: '/tmp/a' }]);
  });

  it('puts a run resumed by the next start (state taken from the database) in the trace of the request that started it', async () => {
    const receiver = await startOtlpReceiver();
    const env = sessionEnv(fake.url, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, MCP_CONFIG_PATH: join(dir, 'none.json'), DATABASE_URL: `sqlite:${join(dir, 'resume.db')}` });
    let paused: any;
    try {
      const first = await startApp(env, { tools: [recordingTool('delete_file')] });
      try {
        fake.reset();
        fake.script({ kind: 'tool_calls', calls: [{ id: 'call_1', name: 'delete_file', arguments: '{"path":"/tmp/a"}' }] });
        paused = await (await post(`${first.url}/api/v1/agent/completion`, { message: 'clean up', model: 'm-restart' }, { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` })).json();
      } finally {
        await first.close();
      }
      const second = await startApp(env, { tools: [recordingTool('delete_file')] });
      try {
        fake.script({ kind: 'text', content: 'Deleted.' });
        expect((await decide(second.url, paused.run_id, paused.pending_approvals[0].approval_id, { decision: 'approve' })).status).toBe(200);
        expect((await waitForRun(second.url, paused.run_id, finished)).status).toBe('completed');
      } finally {
        await second.close();
      }
    } finally {
      await receiver.close();
    }
    const http = only(receiver.spans, (span) => span.name === 'POST /api/v1/agent/completion', 'HTTP span');
    const resumed = only(receiver.spans, (span) => span.name === 'invoke_agent' && span.attributes['chassis.run.resumed'] === true, 'resumed run span');
    expect(resumed.traceId).toBe(TRACE_ID);
    expect(resumed.parentSpanId).toBe(http.spanId);
    expect(only(receiver.spans, (span) => span.name === 'execute_tool delete_file', 'tool span').parentSpanId).toBe(resumed.spanId);
  });

  it('sends prompt, completion and tool arguments and results with OTEL_CAPTURE_CONTENT=true', async () => {
    const { receiver } = await tracedToolRun({ OTEL_CAPTURE_CONTENT: 'true' });
    const chats = receiver.spans.filter((span) => span.name === 'chat m-traced');
    const first = chats.find((chat) => String(chat.attributes['gen_ai.input.messages']).includes('secretly'))!;
    expect(JSON.parse(String(first.attributes['gen_ai.input.messages']))).toEqual([{ role: 'user', parts: [{ type: 'text', content: PROMPT }] }]);
    expect(receiver.bodies.join('\n')).toContain('confidentially');
    const tool = receiver.spans.find((span) => span.name === 'execute_tool calculate')!;
    expect(tool.attributes['gen_ai.tool.call.arguments']).toBe('{"operation":"add","a":2,"b":2}');
    expect(tool.attributes['gen_ai.tool.call.result']).toBe('4');
  });

  it('spans an MCP call and sends its trace context to the MCP HTTP server', async () => {
    const receiver = await startOtlpReceiver();
    const config = join(dir, 'mcp.json');
    writeFileSync(config, JSON.stringify({ mcpServers: { remote: { url: `${mcpServer.url}/mcp` } } }));
    const t = await startApp({ OPENAI_BASE_URL: fake.url, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, MCP_CONFIG_PATH: config });
    try {
      await t.app.chassis.mcp.settled();
      fake.reset();
      fake.script({ kind: 'tool_calls', calls: [{ name: 'echo', arguments: '{"text":"hi"}' }] }, { kind: 'text', content: 'done' });
      mcpServer.requests.length = 0;
      expect((await post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'echo' }] })).status).toBe(200);
    } finally {
      await t.close();
      await receiver.close();
    }
    const tool = only(receiver.spans, (span) => span.name === 'execute_tool echo', 'tool span');
    expect(tool.attributes['gen_ai.tool.type']).toBe('extension');
    const call = only(receiver.spans, (span) => span.name === 'tools/call echo', 'MCP span');
    expect(call.parentSpanId).toBe(tool.spanId);
    expect(call.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'echo', 'network.transport': 'tcp' });
    const carried = mcpServer.requests.map((request) => request.traceparent).filter((header) => header !== undefined);
    expect(carried).toContain(`00-${call.traceId}-${call.spanId}-01`);
  });

  it('keeps OpenTelemetry and prom-client out of every module but the ones loaded on demand', () => {
    // Each library is imported by one file, and that file only by a dynamic import() when configured.
    const sources = readdirSync('src', { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
    const importers = (pattern: RegExp) => sources.filter((file) => pattern.test(readFileSync(join('src', file), 'utf8'))).sort();
    expect(importers(/from '@opentelemetry\//)).toEqual([join('observability', 'tracing.ts')]);
    expect(importers(/from 'prom-client'/)).toEqual([join('observability', 'metrics.ts')]);
    expect(importers(/from '\.\/(tracing|metrics)\.js'/)).toEqual([]);
    expect(readFileSync('src/observability/index.ts', 'utf8')).toMatch(/await import\('\.\/tracing\.js'\)/);
  });

  it('adds no trace ids to logs when OTEL_EXPORTER_OTLP_ENDPOINT is unset, and refuses a protocol it does not send', async () => {
    const t = await startApp({ OPENAI_BASE_URL: fake.url, MCP_CONFIG_PATH: join(dir, 'none.json') });
    await t.close();
    expect(t.logs.some((line) => 'trace_id' in line)).toBe(false);
    await expect(startApp({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).rejects.toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL must be http\/json/);
    await expect(startApp({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).rejects.toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/);
  });
});
