import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, startApp, type TestApp } from './support/app.js';

// Issue 12 #5: /api/v1/openapi.json is a contract clients are generated from. `npm run lint:openapi`
// lints it with Redocly and Spectral (+ OWASP); this checks what the conventions promise.

let fake: FakeUpstream;
let t: TestApp;
let document: any;
beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp({ OPENAI_BASE_URL: fake.url });
  document = await (await fetch(`${t.url}/api/v1/openapi.json`)).json();
});
afterAll(async () => {
  await t.close();
  await fake.close();
});

const operations = () =>
  Object.entries<any>(document.paths).flatMap(([path, item]) =>
    Object.entries<any>(item)
      .filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
      .map(([method, operation]) => ({ path, method, operation })),
  );

describe('the OpenAPI document', () => {
  it('names its server, and every operation has a unique operationId, a summary, tags and a declared security', () => {
    expect(document.servers).toEqual([expect.objectContaining({ url: '/' })]);
    const ids = operations().map(({ operation }) => operation.operationId);
    expect(ids.length).toBeGreaterThanOrEqual(20);
    for (const { path, method, operation } of operations()) {
      expect(operation.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
      expect(operation.summary, `${method} ${path}`).toBeTruthy();
      expect(operation.tags?.length, `${method} ${path}`).toBeGreaterThan(0);
      expect(Array.isArray(operation.security), `${method} ${path}`).toBe(true);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('gives every status of every operation a real description and a schema, errors the shared {detail, code}', () => {
    for (const { path, method, operation } of operations()) {
      const statuses = Object.keys(operation.responses);
      expect(statuses.some((status) => status.startsWith('2')), `${method} ${path}`).toBe(true);
      for (const [status, response] of Object.entries<any>(operation.responses)) {
        const where = `${method} ${path} ${status}`;
        expect(status, where).toMatch(/^[1-5]\d\d$/);
        expect(response.description, where).toBeTruthy();
        expect(response.description, where).not.toBe('Default Response');
        const content = response.content ?? {};
        // 204 No Content has no body by definition (RFC 9110 §15.3.5): it must declare none.
        if (status === '204') {
          expect(Object.keys(content), where).toEqual([]);
          continue;
        }
        expect(Object.keys(content).length, where).toBeGreaterThan(0);
        // Health and readiness answer 503 with their own report (which store or server is down), by design.
        if (Number(status) >= 400 && !['/health', '/api/v1/health', '/ready'].includes(path)) {
          // The OpenAI-compatible surface answers in OpenAI's error shape {error: {message, type, code, param}}.
          const field = path.startsWith('/v1/') ? 'error' : 'detail';
          expect(content['application/json'].schema.properties[field], where).toBeDefined();
        }
      }
    }
  });

  it('documents the event streams, their events, Idempotency-Key and Last-Event-ID', () => {
    const completion = document.paths['/api/v1/agent/completion'].post;
    expect(Object.keys(completion.responses['200'].content).sort()).toEqual(['application/json', 'text/event-stream']);
    const events = completion.responses['200'].content['text/event-stream'].schema.anyOf.map((event: any) => event.properties.type.enum?.[0] ?? event.properties.type.const);
    expect(events).toEqual(['run_started', 'content', 'reasoning', 'tool_call', 'tool_result', 'done', 'error']);
    expect(completion.parameters).toContainEqual(expect.objectContaining({ in: 'header', name: 'idempotency-key' }));
    const stream = document.paths['/api/v1/agent/runs/{run_id}/stream'].get;
    expect(Object.keys(stream.responses['200'].content)).toEqual(['text/event-stream']);
    expect(stream.parameters).toContainEqual(expect.objectContaining({ in: 'header', name: 'last-event-id' }));
  });

  it('types GET /tools, numeric query parameters as integers, and leaves /health without a lock', () => {
    const tools = document.paths['/api/v1/tools'].get.responses['200'].content['application/json'].schema;
    expect(tools.properties.tools.items.properties).toHaveProperty('parameters');
    const messages = document.paths['/api/v1/agent/session/{id}/messages'].get.parameters;
    for (const name of ['limit', 'before', 'after']) {
      expect(messages.find((parameter: any) => parameter.name === name).schema).toMatchObject({ type: 'integer' });
    }
    const after = document.paths['/api/v1/agent/runs/{run_id}/stream'].get.parameters.find((parameter: any) => parameter.name === 'after');
    expect(after.schema.type).toBe('integer');
    expect(document.paths['/health'].get.security).toEqual([]);
    expect(document.paths['/api/v1/auth/login'].post.security).toEqual([]);
    expect(document.paths['/api/v1/auth/me'].get.security).toEqual([{ bearer: [] }]);
    expect(document.paths['/api/v1/agent/completion'].post.security).toEqual([{ apiKey: [] }, { bearer: [] }]);
  });

  it("Swagger's example for the completion runs as it is", async () => {
    const media = document.paths['/api/v1/agent/completion'].post.requestBody.content['application/json'];
    const example = media.example ?? media.schema.example ?? Object.values<any>(media.examples ?? {})[0]?.value;
    expect(example).toEqual({ messages: [{ role: 'user', content: 'What is 2+2?' }], allowed_tools: ['calculate'] });
    fake.script({ kind: 'text', content: '4' });
    const response = await post(`${t.url}/api/v1/agent/completion`, example);
    expect(response.status).toBe(200);
    expect((await response.json()).content).toBe('4');
  });
});
