import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { RunOutcome } from '../agent/index.js';
import type { Config } from '../config.js';
import { ChassisError } from '../errors.js';
import { errorBody } from '../http/error-handler.js';
import { ErrorResponse } from '../http/agent-schemas.js';
import { Type } from '../json-schema.js';
import type { RateLimiter } from '../limits/index.js';
import type { ModelClient, ModelDelta, ModelRequest } from '../model/index.js';
import type { ToolInterceptor } from '../tools/registry.js';
import { BoundedLabel, limitName } from './labels.js';
import { segmentUsage } from './segment.js';
import { CounterFamily, HistogramFamily } from './series.js';
import type { Instrument, ObservedSources, RunFacts } from './types.js';

/** Seconds; model calls and runs take long, so the buckets reach minutes. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const MODEL_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120];
const RUN_BUCKETS = [0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600];
const TOOL_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Error codes that mean "not now, too much work": counted as rejections. */
const REJECTIONS = new Set(['SERVER_BUSY', 'SESSION_BUSY', 'SHUTTING_DOWN']);
const STORE_ERRORS: Record<string, string> = { STORE_UNAVAILABLE: 'db' };

/**
 * METRICS_ENABLED: Prometheus metrics at GET /metrics (prom-client, one registry per app). Everything
 * is counted where the server already has a seam (the request's end, the model client, the tool
 * registry, the run's outcome); gauges are read only when scraped. Labels are bounded: route
 * templates (never raw paths), error codes, registered tool names, at most 50 model names.
 */
export function createMetrics(config: Config, app: FastifyInstance): Instrument {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const models = new BoundedLabel(50);
  const toolNames = new BoundedLabel(200);
  const agents = new BoundedLabel(100);
  const routes = new BoundedLabel(200);

  const httpRequests = new CounterFamily('chassis_http_requests_total', 'HTTP requests by route template and status', ['method', 'route', 'status']);
  const httpDuration = new HistogramFamily('chassis_http_request_duration_seconds', 'Time to answer an HTTP request (SSE streams excluded)', ['method', 'route'], HTTP_BUCKETS);
  const runsTotal = new CounterFamily('chassis_runs_total', 'Agent runs by outcome (completed, max_steps, failed, cancelled) and error code; waiting: a pause for approvals, the resumed run counts again when it ends', ['outcome', 'code']);
  const runDuration = new HistogramFamily('chassis_run_duration_seconds', 'Agent run duration; a run that pauses for approvals is timed per segment, never the wait', ['outcome'], RUN_BUCKETS);
  const modelCalls = new CounterFamily('chassis_model_calls_total', 'Model calls by model and outcome (ok or the error code)', ['model', 'outcome']);
  const modelLatency = new HistogramFamily('chassis_model_call_duration_seconds', 'Model call duration, first byte sent to last byte read', ['model'], MODEL_BUCKETS);
  const modelTtft = new HistogramFamily('chassis_model_time_to_first_token_seconds', 'Streamed model calls: time to the first text or reasoning token', ['model'], MODEL_BUCKETS);
  const tokens = new CounterFamily('chassis_tokens_total', 'Tokens by model, agent and direction (input, output), as the provider reported them', ['model', 'agent', 'direction']);
  const toolCalls = new CounterFamily('chassis_tool_calls_total', 'Tool calls by tool and outcome', ['tool', 'outcome']);
  const toolDuration = new HistogramFamily('chassis_tool_call_duration_seconds', 'Tool call duration', ['tool'], TOOL_BUCKETS);
  const rejections = new CounterFamily('chassis_rejections_total', 'Requests refused for load: SERVER_BUSY (MAX_CONCURRENT_RUNS), SESSION_BUSY (session busy or its queue full), SHUTTING_DOWN', ['reason']);
  const rateLimited = new CounterFamily('chassis_rate_limit_rejections_total', 'Requests refused by a rate limit, by limit', ['limit']);
  const storeErrors = new CounterFamily('chassis_store_errors_total', 'Requests that failed because a store was unavailable (db), and Redis client errors (redis)', ['store']);

  // Written after prom-client's own metrics at each scrape.
  const families = [httpRequests, httpDuration, runsTotal, runDuration, modelCalls, modelLatency, modelTtft, tokens, toolCalls, toolDuration, rejections, rateLimited, storeErrors];

  let sources: ObservedSources | undefined;
  new Gauge({ name: 'chassis_sse_streams_open', help: 'SSE responses currently open', registers: [registry], collect() { this.set(sources?.openStreams() ?? 0); } });
  new Gauge({ name: 'chassis_runs_running', help: 'Agent runs running on this instance', registers: [registry], collect() { this.set(sources?.runs.size ?? 0); } });
  new Gauge({ name: 'chassis_runs_waiting', help: 'Runs waiting for a busy session (on_busy: enqueue) on this instance', registers: [registry], collect() { this.set(sources?.waitingRuns() ?? 0); } });
  new Gauge({
    name: 'chassis_mcp_server_up',
    help: 'MCP servers: 1 when connected, 0 otherwise',
    labelNames: ['server'],
    registers: [registry],
    collect() {
      this.reset();
      for (const server of sources?.mcp.status() ?? []) this.set({ server: server.name }, server.state === 'ready' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'chassis_mcp_server_tools',
    help: 'MCP servers: tools offered',
    labelNames: ['server'],
    registers: [registry],
    collect() {
      this.reset();
      for (const server of sources?.mcp.status() ?? []) this.set({ server: server.name }, server.tools);
    },
  });

  // Counted when the response has been sent: Fastify already listens for that on every response,
  // so this adds no listener of its own (a 'close' listener per request was most of what metrics
  // cost: bench/README.md, "Metrics cost").
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const route = routes.of(request.routeOptions.url ?? 'unmatched');
    httpRequests.inc([request.method, route, String(reply.statusCode)]);
    if (!String(reply.getHeader('content-type') ?? '').startsWith('text/event-stream')) {
      httpDuration.observe([request.method, route], reply.elapsedTime / 1000);
    }
    done();
  });
  app.addHook('onError', (_request, _reply, error, done) => {
    const code = (error as Partial<ChassisError>).code;
    if (typeof code === 'string') {
      if (REJECTIONS.has(code)) rejections.inc([code]);
      const store = STORE_ERRORS[code];
      if (store !== undefined) storeErrors.inc([store]);
    }
    done();
  });

  const expected = config.metricsToken === undefined ? undefined : digest(config.metricsToken);
  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        tags: ['operations'],
        summary: 'Prometheus metrics (METRICS_ENABLED; METRICS_TOKEN as a bearer token when set)',
        security: expected === undefined ? [] : [{ bearer: [] }],
        response: {
          200: Type.String({ description: 'Prometheus text exposition format' }),
          401: { ...ErrorResponse, description: 'METRICS_TOKEN is set and the bearer token is missing or wrong' },
        },
      },
    },
    async (request, reply) => {
      if (expected !== undefined) {
        const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
        if (match === null || !timingSafeEqual(digest(match[1]!), expected)) {
          const error = new ChassisError(401, 'UNAUTHORIZED', 'Send METRICS_TOKEN as "Authorization: Bearer <token>"');
          return reply.code(401).header('www-authenticate', 'Bearer').send(errorBody(error));
        }
      }
      const text = (await registry.metrics()) + families.map((family) => family.render()).join('');
      return reply.type(registry.contentType).send(text);
    },
  );

  function countRun(facts: RunFacts, outcome: RunOutcome, seconds: number): void {
    const label = runOutcome(outcome);
    runsTotal.inc([label, outcome.error?.code ?? '']);
    runDuration.observe([label], seconds);
    // A JSON run's error reaches the error handler (counted there); a stream's goes out as an event.
    const store = facts.stream && outcome.error !== null ? STORE_ERRORS[outcome.error.code] : undefined;
    if (store !== undefined) storeErrors.inc([store]);
    const model = models.of(facts.model);
    const agent = agents.of(facts.agent);
    const usage = segmentUsage(outcome.usage, facts);
    if (usage.prompt_tokens > 0) tokens.inc([model, agent, 'input'], usage.prompt_tokens);
    if (usage.completion_tokens > 0) tokens.inc([model, agent, 'output'], usage.completion_tokens);
  }

  return {
    watch(observed) {
      sources = observed;
      observed.redis?.client.on('error', () => storeErrors.inc(['redis']));
    },
    wrapModel: (model) => meteredModel(model, (request, outcome, seconds, firstTokenSeconds) => {
      const label = models.of(request.model);
      modelCalls.inc([label, outcome]);
      modelLatency.observe([label], seconds);
      if (firstTokenSeconds !== null) modelTtft.observe([label], firstTokenSeconds);
    }),
    wrapLimiter: (limiter) => meteredLimiter(limiter, (key) => rateLimited.inc([limitName(key)])),
    tool: meteredTools((name, outcome, seconds) => {
      const tool = toolNames.of(name);
      toolCalls.inc([tool, outcome]);
      toolDuration.observe([tool], seconds);
    }),
    // No async layer of its own: the counting rides on the run's own promise.
    run: (_request, facts: RunFacts, drive) => {
      const started = performance.now();
      return drive().then((outcome) => {
        countRun(facts, outcome, (performance.now() - started) / 1000);
        return outcome;
      });
    },
  };
}

function runOutcome(outcome: RunOutcome): string {
  if (outcome.status === 'completed') return outcome.stopReason === 'max_steps' ? 'max_steps' : 'completed';
  return outcome.status;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

type ModelObserver = (request: ModelRequest, outcome: string, seconds: number, firstTokenSeconds: number | null) => void;

/**
 * The same client, timed: the call's duration, its first token (streamed calls) and how it ended.
 * A plain iterator over the client's own, not a generator around it: one `then` per batch instead
 * of a generator's await and yield.
 */
export function meteredModel(model: ModelClient, observe: ModelObserver): ModelClient {
  return {
    close: () => model.close(),
    call: (request) => new MeteredCall(model.call(request)[Symbol.asyncIterator](), request, observe),
  };
}

/** Read once, like the generator the client returns: it is its own iterator. */
class MeteredCall implements AsyncIterableIterator<readonly ModelDelta[]> {
  private readonly started = performance.now();
  private firstToken: number | null = null;
  // Stays "incomplete" when the loop stops reading before the end (it never does today).
  private outcome = 'incomplete';
  private finished = false;

  constructor(
    private readonly inner: AsyncIterator<readonly ModelDelta[]>,
    private readonly request: ModelRequest,
    private readonly observe: ModelObserver,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<readonly ModelDelta[]>> {
    return this.inner.next().then(this.seen, this.failed);
  }

  async return(value?: unknown): Promise<IteratorResult<readonly ModelDelta[]>> {
    try {
      return (await this.inner.return?.(value)) ?? { done: true, value: undefined };
    } finally {
      this.finish();
    }
  }

  private readonly seen = (result: IteratorResult<readonly ModelDelta[]>): IteratorResult<readonly ModelDelta[]> => {
    if (result.done === true) {
      this.finish();
      return result;
    }
    // A batch that opens with the end carries no token; any other carries one first.
    if (this.firstToken === null && this.request.stream && result.value[0]?.type !== 'end') this.firstToken = (performance.now() - this.started) / 1000;
    if (result.value.at(-1)?.type === 'end') this.outcome = 'ok';
    return result;
  };

  private readonly failed = (error: unknown): never => {
    this.outcome = error instanceof ChassisError ? error.code : 'INTERNAL_ERROR';
    this.finish();
    throw error;
  };

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.observe(this.request, this.outcome, (performance.now() - this.started) / 1000, this.firstToken);
  }
}

function meteredLimiter(limiter: RateLimiter, rejected: (key: string) => void): RateLimiter {
  return {
    async consume(key, limit, windowSeconds) {
      const decision = await limiter.consume(key, limit, windowSeconds);
      if (!decision.allowed) rejected(key);
      return decision;
    },
    refund: (key) => limiter.refund(key),
    clear: (key) => limiter.clear(key),
  };
}

function meteredTools(observe: (tool: string, outcome: string, seconds: number) => void): ToolInterceptor {
  return (_call, tool, next) => {
    const started = performance.now();
    return next().then((result) => {
      observe(tool?.name ?? 'unknown', result.outcome, (performance.now() - started) / 1000);
      return result;
    });
  };
}
