import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '../json-schema.js';
import type { ApprovalService } from '../approvals/index.js';
import { ErrorResponse } from './agent-schemas.js';
import { CALLER_OR_OPEN_SECURITY, errorResponses } from './openapi.js';
import type { IdentityResolver } from './identity.js';

export interface ApprovalRouteDeps {
  approvals: ApprovalService;
  identity: IdentityResolver;
}

const ID = { minLength: 1, maxLength: 128 };
const RunParams = Type.Object({ run_id: Type.String(ID) });
const ApprovalParams = Type.Object({ run_id: Type.String(ID), approval_id: Type.String(ID) });

const DecisionRequest = Type.Object(
  {
    decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
    reason: Type.Optional(Type.String({ maxLength: 2000, description: 'Told to the model with a denial: "Denied by the user: <reason>"' })),
  },
  { additionalProperties: false },
);

const DecisionResponse = Type.Object({
  approval_id: Type.String(),
  decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
});

export const PendingApprovalSchema = Type.Object({
  approval_id: Type.String(),
  tool_call_id: Type.String(),
  name: Type.String(),
  arguments: Type.String({ description: 'The arguments the model sent, as JSON text' }),
  expires_at: Type.String({ description: 'Undecided by then = denied ("timed out")' }),
});

const Approval = Type.Object({
  approval_id: Type.String(),
  run_id: Type.String(),
  tool_call_id: Type.String(),
  name: Type.String(),
  arguments: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('approved'), Type.Literal('denied')]),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'The reason given, or "timed out" / "cancelled"' }),
  created_at: Type.String(),
  expires_at: Type.String(),
  decided_at: Type.Union([Type.String(), Type.Null()]),
});

const security = CALLER_OR_OPEN_SECURITY;
// 429 (general rate limit) and 500 can answer any /api/v1 route.
const errors = {
  ...errorResponses(429, 500),
  400: { ...ErrorResponse, description: 'The body is not a decision' },
  401: { ...ErrorResponse, description: 'Not authenticated' },
  403: { ...ErrorResponse, description: 'Neither the owner of the run nor of its session (code FORBIDDEN)' },
  404: { ...ErrorResponse, description: 'No such run with approvals, or no such approval in this run (code NOT_FOUND)' },
  503: { ...ErrorResponse, description: 'The database is unavailable (code STORE_UNAVAILABLE)' },
};

/** Human decisions on tool calls a run waits for (see ApprovalService). */
export function registerApprovalRoutes(app: FastifyInstance, deps: ApprovalRouteDeps): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();

  typed.get(
    '/api/v1/agent/runs/:run_id/approvals',
    {
      schema: {
        operationId: 'listRunApprovals',
        tags: ['runs'],
        summary: "A run's tool approvals: pending and decided",
        security,
        params: RunParams,
        response: { 200: { ...Type.Object({ approvals: Type.Array(Approval) }), description: 'Oldest first' }, ...errors },
      },
    },
    async (request) => {
      const principal = await deps.identity(request);
      return { approvals: await deps.approvals.list(principal, request.params.run_id) };
    },
  );

  typed.post(
    '/api/v1/agent/runs/:run_id/approvals/:approval_id',
    {
      schema: {
        operationId: 'decideRunApproval',
        tags: ['runs'],
        summary: 'Approve or deny one waiting tool call (exactly once); the run goes on when its step is fully decided',
        security,
        params: ApprovalParams,
        body: DecisionRequest,
        response: {
          200: { ...DecisionResponse, description: 'The decision was recorded' },
          ...errors,
          409: { ...ErrorResponse, description: 'Already decided, timed out or cancelled (code APPROVAL_ALREADY_DECIDED)' },
        },
      },
    },
    async (request) => {
      const principal = await deps.identity(request);
      const { run_id: runId, approval_id: approvalId } = request.params;
      const { decision, reason } = request.body;
      return deps.approvals.decide(principal, runId, approvalId, decision === 'approve', reason ?? null);
    },
  );
}
