import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyReply, FastifyRequest, FastifyInstance } from 'fastify';
import { createContextKey, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type TextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Config } from '../config.js';
import { ChassisError } from '../errors.js';
import type { ChatMessage, ModelClient } from '../model/index.js';
import { VERSION } from '../version.js';
import { segmentUsage } from './segment.js';
import type { Instrument, TraceCarrier } from './types.js';

// Conventions followed (pinned; README "Tracing"): OpenTelemetry semantic-conventions-genai v0.1.0
// for gen_ai.* and mcp.* (status Development: names may still change upstream), and the stable HTTP
// server conventions for the request span.

/** Every model this server calls speaks OpenAI's Chat Completions. */
const PROVIDER = 'openai';

const headerGetter: TextMapGetter<FastifyRequest['headers'] | TraceCarrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** Kept in a run's context: what its `invoke_agent` span hangs under, so a resumed segment hangs there too. */
const RUN_PARENT = createContextKey('chassis.run.parent');

/**
 * OTEL_EXPORTER_OTLP_ENDPOINT: spans over OTLP/HTTP (JSON), one provider per app and nothing
 * registered globally. The current span travels in this app's own AsyncLocalStorage: the run's
 * span is set around the run, so the model client, the tool registry and the MCP client (each
 * wrapped here, none of them aware of tracing) find their parent without being passed it.
 */
export async function createTracing(config: Config, app: FastifyInstance): Promise<Instrument> {
  const exporter = new OTLPTraceExporter({ url: config.otlpTracesUrl, headers: { ...config.otlpHeaders } });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.otelServiceName, 'service.version': VERSION }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  // Registered first, so it runs last among the close hooks: the spans of the final requests go out.
  app.addHook('onClose', async () => {
    await provider.shutdown().catch((error: unknown) => app.log.warn({ err: error }, 'could not send the last spans'));
  });
  const tracer = provider.getTracer('agent-chassis', VERSION);
  const propagator = new W3CTraceContextPropagator();
  const current = new AsyncLocalStorage<Context>();
  const requestContexts = new WeakMap<FastifyRequest, Context>();
  const capture = config.otelCaptureContent;

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const parent = propagator.extract(ROOT_CONTEXT, request.headers, headerGetter);
    const span = tracer.startSpan(
      request.method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'url.path': request.url.split('?')[0]!, 'url.scheme': request.protocol } },
      parent,
    );
    requestContexts.set(request, trace.setSpan(parent, span));
    const { traceId, spanId } = span.spanContext();
    // Every line this request logs (and its run's warnings) names the trace.
    request.log = request.log.child({ trace_id: traceId, span_id: spanId });
    reply.raw.once('close', () => {
      const route = request.routeOptions.url;
      const status = reply.raw.headersSent ? reply.raw.statusCode : 499;
      if (route !== undefined) {
        span.updateName(`${request.method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) {
        span.setAttribute('error.type', String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    });
    done();
  });

  const child = (name: string, kind: SpanKind, attributes: Record<string, string | number | boolean | string[]>): [Span, Context] => {
    const parent = current.getStore() ?? ROOT_CONTEXT;
    const span = tracer.startSpan(name, { kind, attributes }, parent);
    return [span, trace.setSpan(parent, span)];
  };

  return {
    async run(request, facts, drive) {
      // A resumed segment has no request: it joins the run's trace under the same parent as the first.
      const stored = facts.resumed?.trace;
      const parent = stored !== undefined ? propagator.extract(ROOT_CONTEXT, stored, headerGetter) : ((request === null ? undefined : requestContexts.get(request)) ?? ROOT_CONTEXT);
      const attributes: Record<string, string | boolean> = {
        'gen_ai.operation.name': 'invoke_agent',
        'gen_ai.provider.name': PROVIDER,
        'gen_ai.request.model': facts.model,
        'chassis.run.id': facts.runId,
        'chassis.run.stream': facts.stream,
      };
      if (facts.agent !== null) attributes['gen_ai.agent.name'] = facts.agent;
      if (facts.sessionId !== null) attributes['gen_ai.conversation.id'] = facts.sessionId;
      if (facts.resumed !== undefined) attributes['chassis.run.resumed'] = true;
      const span = tracer.startSpan(facts.agent === null ? 'invoke_agent' : `invoke_agent ${facts.agent}`, { kind: SpanKind.INTERNAL, attributes }, parent);
      try {
        const outcome = await current.run(trace.setSpan(parent, span).setValue(RUN_PARENT, parent), drive);
        const usage = segmentUsage(outcome.usage, facts);
        span.setAttributes({
          'gen_ai.usage.input_tokens': usage.prompt_tokens,
          'gen_ai.usage.output_tokens': usage.completion_tokens,
          'chassis.run.status': outcome.status,
        });
        if (outcome.stopReason !== null) span.setAttribute('gen_ai.response.finish_reasons', [outcome.stopReason]);
        if (outcome.error !== null) failed(span, outcome.error.code, outcome.error.detail);
        return outcome;
      } finally {
        span.end();
      }
    },

    carrier() {
      const parent = current.getStore()?.getValue(RUN_PARENT) as Context | undefined;
      if (parent === undefined) return undefined;
      const carrier: TraceCarrier = {};
      propagator.inject(parent, carrier, { set: (headers, key, value) => (headers[key] = value) });
      return Object.keys(carrier).length === 0 ? undefined : carrier;
    },

    wrapModel: (model): ModelClient => ({
      close: () => model.close(),
      async *call(request) {
        const attributes: Record<string, string | number | boolean> = {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': PROVIDER,
          'gen_ai.request.model': request.model,
          'chassis.request.stream': request.stream,
        };
        if (request.temperature !== undefined) attributes['gen_ai.request.temperature'] = request.temperature;
        if (request.maxTokens !== undefined) attributes['gen_ai.request.max_tokens'] = request.maxTokens;
        if (capture) attributes['gen_ai.input.messages'] = JSON.stringify(request.messages.map(messageParts));
        const [span] = child(`chat ${request.model}`, SpanKind.CLIENT, attributes);
        try {
          for await (const deltas of model.call(request)) {
            const delta = deltas.at(-1)!;
            if (delta.type === 'end') {
              span.setAttribute('gen_ai.response.finish_reasons', [delta.finishReason]);
              if (delta.usage !== null) {
                span.setAttributes({ 'gen_ai.usage.input_tokens': delta.usage.prompt_tokens, 'gen_ai.usage.output_tokens': delta.usage.completion_tokens });
              }
              if (capture) span.setAttribute('gen_ai.output.messages', JSON.stringify([{ ...messageParts(delta.message), finish_reason: delta.finishReason }]));
            }
            yield deltas;
          }
        } catch (error) {
          failed(span, error instanceof ChassisError ? error.code : errorName(error), error instanceof Error ? error.message : undefined);
          throw error;
        } finally {
          span.end();
        }
      },
    }),

    async tool(call, tool, next) {
      const name = tool?.name ?? call.function.name;
      const attributes: Record<string, string> = {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': name,
        'gen_ai.tool.call.id': call.id,
        'gen_ai.tool.type': tool?.source?.startsWith('mcp:') ? 'extension' : 'function',
      };
      if (tool?.description) attributes['gen_ai.tool.description'] = tool.description.slice(0, 500);
      if (capture) attributes['gen_ai.tool.call.arguments'] = call.function.arguments;
      const [span, context] = child(`execute_tool ${name}`, SpanKind.INTERNAL, attributes);
      try {
        const result = await current.run(context, next);
        if (capture) span.setAttribute('gen_ai.tool.call.result', result.text);
        if (result.outcome !== 'ok') failed(span, result.outcome);
        return result;
      } finally {
        span.end();
      }
    },

    mcp: {
      async call(server, tool, transport, send) {
        const [span, context] = child(`tools/call ${tool}`, SpanKind.CLIENT, {
          'mcp.method.name': 'tools/call',
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': tool,
          'network.transport': transport === 'stdio' ? 'pipe' : 'tcp',
          'chassis.mcp.server': server,
        });
        try {
          return await current.run(context, send);
        } catch (error) {
          failed(span, errorName(error), error instanceof Error ? error.message : undefined);
          throw error;
        } finally {
          span.end();
        }
      },
      inject(headers) {
        const context = current.getStore();
        if (context !== undefined) propagator.inject(context, headers, { set: (carrier, key, value) => carrier.set(key, value) });
      },
    },
  };
}

function failed(span: Span, type: string, message?: string): void {
  span.setAttribute('error.type', type);
  span.setStatus({ code: SpanStatusCode.ERROR, ...(message === undefined ? {} : { message: message.slice(0, 500) }) });
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.constructor.name : '_OTHER';
}

/** A chat message in the GenAI conventions' shape: a role and typed parts. */
function messageParts(message: ChatMessage): Record<string, unknown> {
  const parts: Array<Record<string, unknown>> = [];
  if (message.role === 'tool') {
    parts.push({ type: 'tool_call_response', id: message.tool_call_id, response: message.content });
    return { role: 'tool', parts };
  }
  if (message.content) parts.push({ type: 'text', content: message.content });
  if (message.role === 'assistant') {
    for (const call of message.tool_calls ?? []) parts.push({ type: 'tool_call', id: call.id, name: call.function.name, arguments: call.function.arguments });
  }
  return { role: message.role, parts };
}
