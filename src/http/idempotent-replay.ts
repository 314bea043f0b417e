import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { badRequest, ChassisError } from '../errors.js';
import type { Principal } from '../principal.js';
import { answerOf, type EventBatch, type IdempotencyRecord, type RunEvent, type RunRegistry, type RunView } from '../runs/index.js';
import { answer, streamEvents } from './run-output.js';

export interface IdempotencyClaim {
  scope: string;
  key: string;
  fingerprint: string;
}

const KEY = /^[\x21-\x7e]{1,255}$/;

/** Reads `Idempotency-Key`; keys are scoped to the caller, so two users never share one. */
export function idempotencyClaim(request: FastifyRequest, principal: Principal, body: unknown): IdempotencyClaim | null {
  const raw = request.headers['idempotency-key'];
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (key === undefined) return null;
  if (!KEY.test(key)) throw badRequest('Idempotency-Key must be 1-255 visible ASCII characters');
  return {
    scope: principal.userId ?? 'anonymous',
    key,
    fingerprint: createHash('sha256').update(JSON.stringify(body)).digest('base64url'),
  };
}

/**
 * A retry of a request whose key is already claimed: the same run, never a second one. While the
 * run goes on, a stream joins it from its first event and a JSON call waits for its end; after it
 * ended, both get its outcome (from the run log while kept, then from the stored response).
 */
export async function replayIdempotent(
  reply: FastifyReply,
  record: IdempotencyRecord,
  fingerprint: string,
  stream: boolean,
  registry: RunRegistry,
  heartbeatSeconds: number,
) {
  if (record.fingerprint !== fingerprint) {
    throw new ChassisError(409, 'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request body', {
      extra: { run_id: record.runId },
    });
  }
  reply.header('idempotent-replayed', 'true');
  reply.header('x-run-id', record.runId);
  const view = await registry.find(record.runId);
  if (stream) {
    if (view !== null) return streamEvents(reply, record.runId, view, 0, heartbeatSeconds);
    if (record.response !== null) return streamEvents(reply, record.runId, { follow: () => storedEvents(record) }, 0, heartbeatSeconds);
    throw inProgress(record.runId);
  }
  if (view !== null) {
    const replayed = await answerFromLog(view, registry);
    return reply.code(replayed.status).send(replayed.body);
  }
  if (record.response !== null) return reply.code(record.response.status).send(record.response.body);
  throw inProgress(record.runId);
}

const inProgress = (runId: string) =>
  new ChassisError(409, 'IDEMPOTENCY_IN_PROGRESS', 'A request with this Idempotency-Key is still running', { extra: { run_id: runId } });

/** Folds a run's log into the JSON answer its first request got (waiting for the end if needed). */
async function answerFromLog(view: RunView, registry: RunRegistry): Promise<{ status: number; body: Record<string, unknown> }> {
  const runId = view.info.runId;
  const logged: RunEvent[] = [];
  for await (const { events } of view.follow(0)) logged.push(...events);
  const terminal: Record<string, any> | undefined = logged.at(-1);
  if (terminal?.type === 'done') {
    return { status: 200, body: answer({ ...answerOf(logged), usage: terminal.usage, stopReason: terminal.stop_reason }, runId, view.info.sessionId) };
  }
  const ended = (await registry.find(runId))?.end?.error;
  return { status: ended?.status ?? 500, body: { detail: ended?.detail ?? 'The run failed', code: ended?.code ?? 'INTERNAL_ERROR', run_id: runId } };
}

/** The stored outcome as events, for a stream retry after the run's own events have expired. */
async function* storedEvents(record: IdempotencyRecord): AsyncGenerator<EventBatch> {
  const body = record.response!.body;
  const sessionId = (body.session_id as string | null | undefined) ?? null;
  const events: RunEvent[] = [{ type: 'run_started', run_id: record.runId, session_id: sessionId }];
  if (record.response!.status === 200) {
    if (body.content) events.push({ type: 'content', content: body.content });
    events.push({ type: 'done', run_id: record.runId, session_id: sessionId, stop_reason: body.stop_reason, usage: body.usage });
  } else {
    events.push({ type: 'error', run_id: record.runId, detail: body.detail, code: body.code });
  }
  yield { firstSeq: 1, events };
}
