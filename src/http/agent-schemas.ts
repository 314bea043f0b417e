import type { Static } from 'typebox';
import { Type } from '../json-schema.js';
import type { Config } from '../config.js';

/**
 * The completion request, built from the configured limits so the same numbers validate requests
 * and appear in /api/v1/openapi.json. Ajv counts string length in code points (like Python's len).
 */
export function completionSchemas(config: Config) {
  const text = (description: string) => Type.String({ maxLength: config.maxMessageLength, description });

  const ToolCall = Type.Object({
    id: Type.String({ maxLength: 256 }),
    type: Type.Literal('function'),
    function: Type.Object({
      name: Type.String({ maxLength: 256 }),
      arguments: Type.String({ maxLength: config.maxMessageLength }),
    }),
  });

  const Message = Type.Object(
    {
      role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('tool')]),
      // One type list rather than anyOf, so a too-long text gets one clear error.
      content: Type.Unsafe<string | null>({ type: ['string', 'null'], maxLength: config.maxMessageLength, description: 'Message text' }),
      name: Type.Optional(Type.String({ maxLength: 256 })),
      tool_calls: Type.Optional(Type.Array(ToolCall, { maxItems: 128 })),
      tool_call_id: Type.Optional(Type.String({ maxLength: 256 })),
    },
    { description: 'One message in OpenAI chat format' },
  );

  const CompletionRequest = Type.Object({
    messages: Type.Optional(
      Type.Array(Message, {
        minItems: 1,
        maxItems: config.maxMessagesPerRequest,
        description: 'Client-side mode: the whole conversation so far',
      }),
    ),
    message: Type.Optional(text('Server-side mode: the new user message')),
    agent: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'Run this named agent (GET /api/v1/agents): its instructions, model and tools; a new session remembers it',
      }),
    ),
    session_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Server-side mode: continue this session' })),
    system_prompt: Type.Optional(text('System prompt put before the conversation')),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2, default: 0.7 })),
    max_tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 128_000 })),
    allowed_tools: Type.Optional(
      Type.Union([Type.Array(Type.String({ maxLength: 256 }), { maxItems: 1024 }), Type.Null()], {
        description: 'absent or null = every tool, [] = none, a list = only those',
      }),
    ),
    stream: Type.Optional(Type.Boolean({ default: false })),
    on_busy: Type.Optional(
      Type.Union([Type.Literal('reject'), Type.Literal('enqueue')], {
        description: 'Server-side mode, when another run holds the session: 409 at once (reject, the default) or wait for it (enqueue)',
      }),
    ),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: `Kept on the session; at most ${config.maxMetadataSize} bytes as JSON` }),
    ),
  });

  const Usage = Type.Object({
    prompt_tokens: Type.Integer(),
    completion_tokens: Type.Integer(),
    total_tokens: Type.Integer(),
  });

  const CompletionResponse = Type.Object({
    role: Type.Literal('assistant'),
    content: Type.String(),
    session_id: Type.Union([Type.String(), Type.Null()]),
    run_id: Type.String({ description: 'This run: GET /api/v1/agent/runs/{run_id} shows it' }),
    stop_reason: Type.String({ description: 'stop | length | max_steps | content_filter | cancelled | approval_required' }),
    tool_calls: Type.Optional(Type.Array(ToolCall)),
    pending_approvals: Type.Optional(
      Type.Array(
        Type.Object({ approval_id: Type.String(), tool_call_id: Type.String(), name: Type.String(), arguments: Type.String(), expires_at: Type.String() }),
        { description: 'With stop_reason "approval_required": the tool calls waiting for POST /api/v1/agent/runs/{run_id}/approvals/{approval_id}' },
      ),
    ),
    usage: Usage,
  });

  return { CompletionRequest, CompletionResponse, ErrorResponse };
}

export const ErrorResponse = Type.Object(
  { detail: Type.String(), code: Type.Optional(Type.String()) },
  { additionalProperties: true },
);

export type CompletionRequest = Static<ReturnType<typeof completionSchemas>['CompletionRequest']>;
