import type { FastifyRequest } from 'fastify';
import type { RunOutcome, RunTracker } from '../agent/index.js';
import type { RateLimiter } from '../limits/index.js';
import type { ModelClient } from '../model/index.js';
import type { RedisConnection } from '../redis/index.js';
import type { ToolInterceptor } from '../tools/registry.js';
import type { McpTools } from '../tools/index.js';

/** What the agent route knows about a run before it starts. */
export interface RunFacts {
  runId: string;
  sessionId: string | null;
  model: string;
  /** The named agent (src/agents/catalog.ts) once runs can name one; null until then. */
  agent: string | null;
  stream: boolean;
}

/** Wraps one MCP tool call (a span per call) and adds trace headers to requests sent to MCP HTTP servers. */
export interface McpInstrument {
  call<T>(server: string, tool: string, transport: string | null, send: () => Promise<T>): Promise<T>;
  /** Adds `traceparent` (and `tracestate`) for the current span to an outgoing request's headers. */
  inject(headers: Headers): void;
}

/** Parts of the server the metrics read when scraped (gauges), never on a request's path. */
export interface ObservedSources {
  runs: RunTracker;
  mcp: McpTools;
  /** Runs waiting for a busy session on this instance. */
  waitingRuns(): number;
  /** Its client's errors are counted as store errors. */
  redis?: RedisConnection;
}

/**
 * What an optional part (metrics, tracing) plugs into the server. Each hook wraps something the
 * server already has (the model client, the rate limiter, the tool registry, the run), so the
 * agent loop itself never learns about metrics or spans.
 */
export interface Instrument {
  wrapModel?(model: ModelClient): ModelClient;
  wrapLimiter?(limiter: RateLimiter): RateLimiter;
  tool?: ToolInterceptor;
  run?(request: FastifyRequest, facts: RunFacts, drive: () => Promise<RunOutcome>): Promise<RunOutcome>;
  mcp?: McpInstrument;
  watch?(sources: ObservedSources): void;
}
