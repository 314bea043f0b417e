import type { FastifyRequest } from 'fastify';
import type { RunOutcome, RunTracker } from '../agent/index.js';
import type { RateLimiter } from '../limits/index.js';
import type { ModelClient } from '../model/index.js';
import type { Usage } from '../model/types.js';
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
  /** Set when this is a run going on after approvals (a later segment of the same run). */
  resumed?: ResumedSegment;
}

/**
 * A run that paused for approvals is observed one segment at a time: the start up to the pause,
 * then each resumption up to its end or next pause. A later segment counts only what it adds.
 */
export interface ResumedSegment {
  /** What the earlier segments used (the checkpoint's usage, which the run's own total includes). */
  usage: Usage;
  /** The trace context recorded at the pause (`carrier()`), so the segment joins the run's trace. */
  trace?: TraceCarrier;
}

/** W3C trace context headers (`traceparent`, `tracestate`) as plain JSON, stored with a paused run. */
export type TraceCarrier = Record<string, string>;

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
  /** SSE responses open on this instance. */
  openStreams(): number;
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
  /** `request` is the one that started the run; null for a resumed segment (no request waits for it). */
  run?(request: FastifyRequest | null, facts: RunFacts, drive: () => Promise<RunOutcome>): Promise<RunOutcome>;
  /** Inside a run: where its later segments belong in the trace (absent without tracing). */
  carrier?(): TraceCarrier | undefined;
  mcp?: McpInstrument;
  watch?(sources: ObservedSources): void;
}
