import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';
import { decide, finished, recordingTool, waitForRun } from './support/approvals.js';
import { sessionEnv } from './support/sessions.js';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(async () => {
  await fake.close();
});

/** One sample's value from the Prometheus text, by metric name and exact label set (order as written). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels);
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (wanted.every(([key, value]) => have[key] === value) && Object.keys(have).length === wanted.length) return Number(match[3]);
  }
  return undefined;
}

const scrape = async (t: TestApp, headers: Record<string, string> = {}) => fetch(`${t.url}/metrics`, { headers });

describe('GET /metrics', () => {
  it('does not exist unless METRICS_ENABLED=true', async () => {
    const t = await startApp({ OPENAI_BASE_URL: fake.url });
    try {
      expect((await scrape(t)).status).toBe(404);
    } finally {
      await t.close();
    }
  });

  it('counts requests by route template, runs by outcome, model calls, tokens and tool calls', async () => {
    const t = await startApp({ OPENAI_BASE_URL: fake.url, METRICS_ENABLED: 'true' });
    try {
      fake.reset();
      fake.script(
        { kind: 'tool_calls', calls: [{ name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' }], usage: { prompt_tokens: 7, completion_tokens: 3 } },
        { kind: 'text', content: '4', usage: { prompt_tokens: 11, completion_tokens: 5 } },
        { kind: 'text', content: 'streamed', chunkSize: 2, usage: { prompt_tokens: 2, completion_tokens: 4 } },
        { kind: 'status', status: 401 },
      );
      const url = `${t.url}/api/v1/agent/completion`;
      expect((await post(url, { messages: [{ role: 'user', content: '2+2?' }], model: 'm-one' })).status).toBe(200);
      const streamed = await post(url, { messages: [{ role: 'user', content: 'hi' }], model: 'm-one', stream: true });
      expect((await readSse(streamed)).events.at(-1).type).toBe('done');
      expect((await post(url, { messages: [{ role: 'user', content: 'x' }], model: 'm-two' })).status).toBe(502);
      // A raw path with an id in it must appear only as its route template.
      expect((await fetch(`${t.url}/api/v1/agent/runs/run_secret123`)).status).toBe(404);
      expect((await fetch(`${t.url}/no/such/path/abc`)).status).toBe(404);

      const response = await scrape(t);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/plain');
      const text = await response.text();
      expect(sample(text, 'chassis_http_requests_total', { method: 'POST', route: '/api/v1/agent/completion', status: '200' })).toBe(2);
      expect(sample(text, 'chassis_http_requests_total', { method: 'POST', route: '/api/v1/agent/completion', status: '502' })).toBe(1);
      expect(sample(text, 'chassis_http_requests_total', { method: 'GET', route: '/api/v1/agent/runs/:run_id', status: '404' })).toBe(1);
      expect(sample(text, 'chassis_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
      expect(text).not.toContain('run_secret123');
      expect(text).not.toContain('/no/such/path');
      expect(sample(text, 'chassis_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/agent/completion' })).toBe(2); // the SSE one is not timed
      expect(sample(text, 'chassis_runs_total', { outcome: 'completed', code: '' })).toBe(2);
      expect(sample(text, 'chassis_runs_total', { outcome: 'failed', code: 'UPSTREAM_AUTH_FAILED' })).toBe(1);
      expect(sample(text, 'chassis_run_duration_seconds_count', { outcome: 'completed' })).toBe(2);
      expect(sample(text, 'chassis_model_calls_total', { model: 'm-one', outcome: 'ok' })).toBe(3);
      expect(sample(text, 'chassis_model_calls_total', { model: 'm-two', outcome: 'UPSTREAM_AUTH_FAILED' })).toBe(1);
      expect(sample(text, 'chassis_model_call_duration_seconds_count', { model: 'm-one' })).toBe(3);
      expect(sample(text, 'chassis_model_time_to_first_token_seconds_count', { model: 'm-one' })).toBe(1); // only the streamed call
      expect(sample(text, 'chassis_tokens_total', { model: 'm-one', agent: 'none', direction: 'input' })).toBe(20);
      expect(sample(text, 'chassis_tokens_total', { model: 'm-one', agent: 'none', direction: 'output' })).toBe(12);
      expect(sample(text, 'chassis_tool_calls_total', { tool: 'calculate', outcome: 'ok' })).toBe(1);
      expect(sample(text, 'chassis_tool_call_duration_seconds_count', { tool: 'calculate' })).toBe(1);
      expect(sample(text, 'chassis_runs_running')).toBe(0);
      expect(sample(text, 'chassis_sse_streams_open')).toBe(0);
      expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
      expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    } finally {
      await t.close();
    }
  });

  it('counts a run resumed after an approval as its own segment: waiting once, then its real end, tokens once', async () => {
    const tool = recordingTool('delete_file');
    const t = await startApp(sessionEnv(fake.url, { METRICS_ENABLED: 'true' }), { tools: [tool] });
    try {
      fake.reset();
      fake.script(
        { kind: 'tool_calls', calls: [{ id: 'call_1', name: 'delete_file', arguments: '{"path":"/tmp/a"}' }], usage: { prompt_tokens: 10, completion_tokens: 5 } },
        { kind: 'text', content: 'Deleted.', usage: { prompt_tokens: 20, completion_tokens: 2 } },
      );
      const paused = (await (await post(`${t.url}/api/v1/agent/completion`, { message: 'clean up', model: 'm-approve' })).json()) as any;
      expect(paused.stop_reason).toBe('approval_required');
      const before = await (await scrape(t)).text();
      expect(sample(before, 'chassis_runs_total', { outcome: 'waiting', code: '' })).toBe(1);
      expect(sample(before, 'chassis_runs_total', { outcome: 'completed', code: '' })).toBeUndefined();

      expect((await decide(t.url, paused.run_id, paused.pending_approvals[0].approval_id, { decision: 'approve' })).status).toBe(200);
      expect((await waitForRun(t.url, paused.run_id, finished)).status).toBe('completed');
      const text = await (await scrape(t)).text();
      expect(sample(text, 'chassis_runs_total', { outcome: 'waiting', code: '' })).toBe(1);
      expect(sample(text, 'chassis_runs_total', { outcome: 'completed', code: '' })).toBe(1);
      expect(sample(text, 'chassis_run_duration_seconds_count', { outcome: 'waiting' })).toBe(1);
      expect(sample(text, 'chassis_run_duration_seconds_count', { outcome: 'completed' })).toBe(1);
      // The resumed outcome carries the whole run's usage (30/7); the first segment counted its 10/5 already.
      expect(sample(text, 'chassis_tokens_total', { model: 'm-approve', agent: 'none', direction: 'input' })).toBe(30);
      expect(sample(text, 'chassis_tokens_total', { model: 'm-approve', agent: 'none', direction: 'output' })).toBe(7);
      expect(sample(text, 'chassis_tool_calls_total', { tool: 'delete_file', outcome: 'ok' })).toBe(1);
      expect(sample(text, 'chassis_runs_running')).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('counts a run cancelled while it waits for an approval as cancelled', async () => {
    const t = await startApp(sessionEnv(fake.url, { METRICS_ENABLED: 'true' }), { tools: [recordingTool('delete_file')] });
    try {
      fake.reset();
      fake.script({ kind: 'tool_calls', calls: [{ id: 'call_1', name: 'delete_file', arguments: '{"path":"/tmp/a"}' }] });
      const paused = (await (await post(`${t.url}/api/v1/agent/completion`, { message: 'clean up' })).json()) as any;
      expect((await post(`${t.url}/api/v1/agent/runs/${paused.run_id}/cancel`, {})).status).toBeLessThan(300);
      expect((await waitForRun(t.url, paused.run_id, finished)).status).toBe('cancelled');
      const text = await (await scrape(t)).text();
      expect(sample(text, 'chassis_runs_total', { outcome: 'waiting', code: '' })).toBe(1);
      expect(sample(text, 'chassis_runs_total', { outcome: 'cancelled', code: 'RUN_CANCELLED' })).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('keeps model labels bounded: past 50 names, the rest count as "other"', async () => {
    const t = await startApp({ OPENAI_BASE_URL: fake.url, METRICS_ENABLED: 'true' });
    try {
      fake.reset();
      fake.setDefault({ kind: 'text', content: 'ok' });
      for (let index = 0; index < 52; index++) {
        expect((await post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'x' }], model: `model-${index}` })).status).toBe(200);
      }
      const text = await (await scrape(t)).text();
      expect(sample(text, 'chassis_model_calls_total', { model: 'model-49', outcome: 'ok' })).toBe(1);
      expect(sample(text, 'chassis_model_calls_total', { model: 'model-50', outcome: 'ok' })).toBeUndefined();
      expect(sample(text, 'chassis_model_calls_total', { model: 'other', outcome: 'ok' })).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('shows open SSE streams and running runs while a run streams', async () => {
    const t = await startApp({ OPENAI_BASE_URL: fake.url, METRICS_ENABLED: 'true' });
    try {
      fake.reset();
      fake.script({ kind: 'text', content: 'slow answer here', chunkSize: 1, delayMs: 40 });
      const streamed = post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }], stream: true });
      const response = await streamed;
      await fake.waitForRequests(1);
      const during = await (await scrape(t)).text();
      expect(sample(during, 'chassis_sse_streams_open')).toBe(1);
      expect(sample(during, 'chassis_runs_running')).toBe(1);
      await readSse(response);
      const after = await (await scrape(t)).text();
      expect(sample(after, 'chassis_sse_streams_open')).toBe(0);
      expect(sample(after, 'chassis_runs_running')).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('counts SERVER_BUSY rejections and rate-limit rejections by limit, and is itself never rate limited', async () => {
    const t = await startApp({ OPENAI_BASE_URL: fake.url, METRICS_ENABLED: 'true', ENABLE_RATE_LIMITING: 'true', API_RATE_LIMIT_PER_MINUTE: '2', MAX_CONCURRENT_RUNS: '1' });
    try {
      fake.reset();
      fake.script({ kind: 'text', content: 'slow', chunkSize: 1, delayMs: 100 });
      const url = `${t.url}/api/v1/agent/completion`;
      const first = post(url, { messages: [{ role: 'user', content: 'a' }], stream: true });
      const firstResponse = await first;
      expect((await post(url, { messages: [{ role: 'user', content: 'b' }] })).status).toBe(503);
      expect((await post(url, { messages: [{ role: 'user', content: 'c' }] })).status).toBe(429);
      await readSse(firstResponse);
      for (let index = 0; index < 4; index++) expect((await scrape(t)).status).toBe(200);
      const text = await (await scrape(t)).text();
      expect(sample(text, 'chassis_rejections_total', { reason: 'SERVER_BUSY' })).toBe(1);
      expect(sample(text, 'chassis_rate_limit_rejections_total', { limit: 'api:ip' })).toBe(1);
      expect(text).not.toContain('127.0.0.1');
    } finally {
      await t.close();
    }
  });

  it('asks for METRICS_TOKEN as a bearer token when set, and refuses a short one at start', async () => {
    const token = 'metrics-token-0123456789';
    const t = await startApp({ OPENAI_BASE_URL: fake.url, METRICS_ENABLED: 'true', METRICS_TOKEN: token, CHASSIS_API_KEY: 'api-key' });
    try {
      const missing = await scrape(t);
      expect(missing.status).toBe(401);
      expect(await missing.json()).toMatchObject({ code: 'UNAUTHORIZED' });
      expect((await scrape(t, { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
      expect((await scrape(t, { 'x-api-key': 'api-key' })).status).toBe(401); // the API key is not the metrics token
      expect((await scrape(t, { authorization: `Bearer ${token}` })).status).toBe(200);
    } finally {
      await t.close();
    }
    await expect(startApp({ METRICS_ENABLED: 'true', METRICS_TOKEN: 'short' })).rejects.toThrow(/METRICS_TOKEN must be at least 16 characters/);
  });
});

describe('the request-path series (src/observability/series.ts)', () => {
  it('writes cumulative buckets, +Inf, sum and count, and escapes label values', async () => {
    const { CounterFamily, HistogramFamily } = await import('../src/observability/series.js');
    const histogram = new HistogramFamily('h_seconds', 'help', ['route'], [0.1, 1]);
    for (const value of [0.05, 0.1, 0.5, 3]) histogram.observe(['/a'], value);
    const text = histogram.render();
    expect(sample(text, 'h_seconds_bucket', { route: '/a', le: '0.1' })).toBe(2);
    expect(sample(text, 'h_seconds_bucket', { route: '/a', le: '1' })).toBe(3);
    expect(sample(text, 'h_seconds_bucket', { route: '/a', le: '+Inf' })).toBe(4);
    expect(sample(text, 'h_seconds_sum', { route: '/a' })).toBeCloseTo(3.65);
    expect(sample(text, 'h_seconds_count', { route: '/a' })).toBe(4);
    expect(text).toContain('# TYPE h_seconds histogram');
    const counter = new CounterFamily('c_total', 'help', ['model']);
    counter.inc(['a"b\\c\nd'], 2);
    counter.inc(['a"b\\c\nd']);
    expect(counter.render()).toContain('c_total{model="a\\"b\\\\c\\nd"} 3\n');
  });
});
