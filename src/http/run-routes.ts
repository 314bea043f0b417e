import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '../json-schema.js';
import type { Config } from '../config.js';
import { badRequest, ChassisError, forbidden, notFound } from '../errors.js';
import type { Principal } from '../principal.js';
import type { RunRegistry, RunView } from '../runs/index.js';
import { CALLER_SECURITY, COMMON_ERRORS, described, errorResponses, jsonOrStream, Usage } from './openapi.js';
import { streamEvents } from './run-output.js';
import type { IdentityResolver } from './identity.js';
import type { SessionService } from '../sessions/index.js';
import type { ApprovalService } from '../approvals/index.js';
import { RunLog } from '../runs/index.js';
import { PendingApprovalSchema } from './approval-routes.js';

export interface RunRouteDeps {
  config: Config;
  registry: RunRegistry;
  identity: IdentityResolver;
  /** Tells a run waiting for approvals apart from a running one, and shows a waiting run no instance hosts live. */
  approvals?: ApprovalService;
  /** When persistence is on: lets a session's owner see and cancel the runs on their session. */
  sessions?: Pick<SessionService, 'view'>;
}

const RunParams = Type.Object({ run_id: Type.String({ minLength: 1, maxLength: 128, description: 'The run id (X-Run-Id, run_id)' }) });
const runErrors = errorResponses(...COMMON_ERRORS, 403, 404);

const RunStatus = Type.Object({
  run_id: Type.String(),
  status: Type.String({ enum: ['running', 'waiting_approval', 'completed', 'failed', 'cancelled'] }),
  pending_approvals: Type.Optional(Type.Array(PendingApprovalSchema, { description: 'While waiting_approval: the calls waiting for a decision' })),
  session_id: Type.Union([Type.String(), Type.Null()]),
  stop_reason: Type.Union([Type.String(), Type.Null()]),
  usage: Type.Union([Usage, Type.Null()]),
  error: Type.Union([Type.Object({ detail: Type.String(), code: Type.String() }), Type.Null()]),
  created_at: Type.String(),
  ended_at: Type.Union([Type.String(), Type.Null()]),
  duration_ms: Type.Integer({ description: 'So far, while running' }),
  event_count: Type.Integer({ description: 'Events so far; the last one has seq = event_count' }),
});

// Last-Event-ID is `<run_id>:<seq>`, as sent in each event's `id:` line; a bare number is accepted too.
const LAST_EVENT_ID = /^(?:(.+):)?(\d{1,9})$/;

export function registerRunRoutes(app: FastifyInstance, deps: RunRouteDeps): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();

  async function findRun(request: FastifyRequest, runId: string): Promise<RunView> {
    const principal = await deps.identity(request);
    const view = (await deps.registry.find(runId)) ?? (await recordedView(runId));
    if (view === null) throw notFound(`Run ${runId} not found (finished runs are kept for RUN_EVENTS_TTL_SECONDS)`);
    await checkAccess(principal, view, deps.sessions);
    return view;
  }

  /** A waiting run known only from the database (no Redis, hosted elsewhere): its recorded events. */
  async function recordedView(runId: string): Promise<RunView | null> {
    const recorded = await deps.approvals?.recorded(runId);
    if (recorded == null) return null;
    const log = new RunLog(recorded.info, recorded.events);
    return { info: log.info, status: 'running', end: null, endedAt: null, eventCount: log.events.length, mayAwaitApproval: true, follow: async function* (afterSeq) {
      if (afterSeq < log.events.length) yield { firstSeq: afterSeq + 1, events: log.events.slice(afterSeq) };
    } };
  }

  async function describeRun(view: RunView) {
    const described = describe(view);
    // A poll of a run that never paused (or has resumed) costs no approval-store query.
    if (view.status !== 'running' || !view.mayAwaitApproval || deps.approvals === undefined) return described;
    const pending = await deps.approvals.waiting(view.info.runId);
    return pending === null ? described : { ...described, status: 'waiting_approval', pending_approvals: pending };
  }

  typed.get(
    '/api/v1/agent/runs/:run_id',
    {
      schema: {
        operationId: 'getRun',
        tags: ['runs'],
        summary: 'Status of a run',
        security: CALLER_SECURITY,
        params: RunParams,
        response: { 200: described(RunStatus, "The run's status"), ...runErrors },
      },
    },
    async (request) => describeRun(await findRun(request, request.params.run_id)),
  );

  typed.get(
    '/api/v1/agent/runs/:run_id/stream',
    {
      schema: {
        operationId: 'streamRun',
        tags: ['runs'],
        summary: 'Replay the events after Last-Event-ID (or ?after=seq), then follow the run live to its end',
        security: CALLER_SECURITY,
        params: RunParams,
        headers: Type.Object({
          'last-event-id': Type.Optional(Type.String({ maxLength: 200, description: 'Resume after this event: "<run_id>:<seq>" as sent in its id: line (EventSource sends it by itself)' })),
        }),
        // Query values are strings (types are never coerced here): a digits pattern, parsed below.
        querystring: Type.Object({ after: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$', description: 'Replay events with seq > after' })) }),
        response: {
          200: jsonOrStream(null, "The run's events after the resume point, then live to its terminal done or error"),
          204: described(Type.Null(), 'The run has ended and nothing follows the resume point (an EventSource stops reconnecting)'),
          ...runErrors,
        },
      },
    },
    async (request, reply) => {
      const runId = request.params.run_id;
      const view = await findRun(request, runId);
      const after = request.query.after === undefined ? undefined : Number(request.query.after);
      const afterSeq = resumePoint(after, request.headers['last-event-id'], runId);
      // Nothing left to send: 204 tells an EventSource to stop reconnecting (an empty 200 would make it retry forever).
      if (view.status !== 'running' && afterSeq >= view.eventCount) return reply.code(204).send(null);
      await streamEvents(reply, runId, view, afterSeq, deps.config.sseHeartbeatSeconds);
    },
  );

  typed.post(
    '/api/v1/agent/runs/:run_id/cancel',
    {
      schema: {
        operationId: 'cancelRun',
        tags: ['runs'],
        summary: 'Stop a run (idempotent)',
        security: CALLER_SECURITY,
        params: RunParams,
        response: { 200: described(RunStatus, 'The run after the cancel: cancelled, or how it had already ended'), ...runErrors },
      },
    },
    async (request) => {
      const runId = request.params.run_id;
      const view = await findRun(request, runId);
      if (view.status === 'running') {
        await deps.registry.cancel(runId);
        // Wait (briefly) for the run to write its terminal event, so the answer shows the outcome.
        const waited = new AbortController();
        const timer = setTimeout(() => waited.abort(), 5_000);
        for await (const _ of view.follow(view.eventCount, waited.signal));
        clearTimeout(timer);
      }
      return describeRun((await deps.registry.find(runId)) ?? view);
    },
  );
}

/**
 * Who may see, follow and cancel a run: whoever started it, and the owner of the session it runs
 * on (a collaborator's run on my session is mine to watch and stop: it holds my session busy).
 * With auth off (open mode) anyone may.
 */
async function checkAccess(principal: Principal, view: RunView, sessions: RunRouteDeps['sessions']): Promise<void> {
  if (principal.via === 'open') return;
  if (view.info.ownerId === principal.userId) return;
  if (principal.userId !== null && view.info.sessionId !== null && sessions !== undefined) {
    const isOwner = await sessions.view(principal, view.info.sessionId).then(
      (found) => found.isOwner,
      (error: unknown) => {
        // No access to the session, or it is gone: not the owner. A store failure stays a 503.
        if (error instanceof ChassisError && (error.status === 403 || error.status === 404)) return false;
        throw error;
      },
    );
    if (isOwner) return;
  }
  throw forbidden('This run belongs to someone else');
}

function resumePoint(after: number | undefined, lastEventId: string | string[] | undefined, runId: string): number {
  if (after !== undefined) return after;
  const header = Array.isArray(lastEventId) ? lastEventId[0] : lastEventId;
  if (header === undefined || header.trim() === '') return 0;
  const match = LAST_EVENT_ID.exec(header.trim());
  if (match === null || (match[1] !== undefined && match[1] !== runId)) {
    throw badRequest(`Last-Event-ID must be "${runId}:<seq>" as sent in this run's events`);
  }
  return Number(match[2]);
}

function describe(view: RunView) {
  const end = view.end;
  return {
    run_id: view.info.runId,
    status: view.status,
    session_id: view.info.sessionId,
    stop_reason: end?.stopReason ?? null,
    usage: end?.usage ?? null,
    error: end?.error ?? null,
    created_at: new Date(view.info.createdAt).toISOString(),
    ended_at: view.endedAt === null ? null : new Date(view.endedAt).toISOString(),
    duration_ms: Math.max(0, (view.endedAt ?? Date.now()) - view.info.createdAt),
    event_count: view.eventCount,
  };
}
