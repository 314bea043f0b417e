import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RunOutcome } from '../agent/index.js';
import type { Config } from '../config.js';
import type { RateLimiter } from '../limits/index.js';
import type { ModelClient } from '../model/index.js';
import type { ToolRegistry } from '../tools/index.js';
import type { Instrument, McpInstrument, ObservedSources, RunFacts, TraceCarrier } from './types.js';

export type { Instrument, McpInstrument, ObservedSources, ResumedSegment, RunFacts, TraceCarrier } from './types.js';

/** Metrics and tracing as the rest of the server sees them: wrappers that do nothing when both are off. */
export interface Observability {
  model(model: ModelClient): ModelClient;
  limiter(limiter: RateLimiter): RateLimiter;
  tools(registry: ToolRegistry): void;
  /**
   * Runs `drive` (one agent run, or one segment of a run resumed after approvals: `facts.resumed`)
   * inside whatever the parts record around a run. Every segment of every run goes through here once.
   */
  run(request: FastifyRequest | null, facts: RunFacts, drive: () => Promise<RunOutcome>): Promise<RunOutcome>;
  /** Called inside a run that pauses: what to store so its resumed segments join its trace. */
  carrier(): TraceCarrier | undefined;
  /** For the MCP client: absent when tracing is off. */
  mcp: McpInstrument | undefined;
  watch(sources: ObservedSources): void;
}

/**
 * Loads the parts that are configured (METRICS_ENABLED, OTEL_EXPORTER_OTLP_ENDPOINT) and only those:
 * prom-client and OpenTelemetry are imported here or never. Each registers its own HTTP hooks
 * (and `/metrics`) on `app`; tracing goes first, so the metrics see requests inside their span.
 */
export async function createObservability(config: Config, app: FastifyInstance): Promise<Observability> {
  const parts: Instrument[] = [];
  if (config.otlpTracesUrl !== undefined) {
    const { createTracing } = await import('./tracing.js');
    parts.push(await createTracing(config, app));
  }
  if (config.metricsEnabled) {
    const { createMetrics } = await import('./metrics.js');
    parts.push(createMetrics(config, app));
  }
  const runWrappers = parts.flatMap((part) => (part.run === undefined ? [] : [part.run.bind(part)]));
  return {
    model: (model) => parts.reduce((wrapped, part) => part.wrapModel?.(wrapped) ?? wrapped, model),
    limiter: (limiter) => parts.reduce((wrapped, part) => part.wrapLimiter?.(wrapped) ?? wrapped, limiter),
    tools(registry) {
      for (const part of parts) if (part.tool !== undefined) registry.intercept(part.tool);
    },
    run(request, facts, drive) {
      // The first part's wrapper is the outermost: the run's span is current while the metrics time it.
      let next = drive;
      for (let index = runWrappers.length - 1; index >= 0; index--) {
        const wrap = runWrappers[index]!;
        const inner = next;
        next = () => wrap(request, facts, inner);
      }
      return next();
    },
    carrier: () => parts.find((part) => part.carrier !== undefined)?.carrier?.(),
    mcp: parts.find((part) => part.mcp !== undefined)?.mcp,
    watch(sources) {
      for (const part of parts) part.watch?.(sources);
    },
  };
}
