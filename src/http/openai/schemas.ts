import type { Static } from 'typebox';
import type { Config } from '../../config.js';
import { Type } from '../../json-schema.js';

/**
 * OpenAI's Chat Completions request and answers, as far as this server reads and writes them.
 * Fields not listed are accepted and ignored (clients send many: top_p, seed, user, store, …);
 * the few that would change what an answer means and cannot be honoured are refused in request.ts.
 * Built from the configured limits, like the native API's schemas.
 */
export function chatSchemas(config: Config) {
  const text = Type.String({ maxLength: config.maxMessageLength });
  const ContentPart = Type.Object(
    { type: Type.String({ maxLength: 64 }), text: Type.Optional(text) },
    { description: 'A content part; only `text` parts are supported' },
  );
  const ToolCall = Type.Object({
    id: Type.String({ maxLength: 256 }),
    type: Type.Literal('function'),
    function: Type.Object({ name: Type.String({ maxLength: 256 }), arguments: Type.String({ maxLength: config.maxMessageLength }) }),
  });
  const Message = Type.Object({
    role: Type.Union([Type.Literal('system'), Type.Literal('developer'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('tool')]),
    content: Type.Optional(Type.Union([text, Type.Null(), Type.Array(ContentPart, { maxItems: 256 })])),
    name: Type.Optional(Type.String({ maxLength: 256 })),
    tool_calls: Type.Optional(Type.Array(ToolCall, { maxItems: 128 })),
    tool_call_id: Type.Optional(Type.String({ maxLength: 256 })),
  });
  const FunctionTool = Type.Object({
    type: Type.Literal('function'),
    function: Type.Object({
      name: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
      description: Type.Optional(Type.String({ maxLength: 8192 })),
      parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    }),
  });
  const ChatCompletionRequest = Type.Object({
    model: Type.String({ minLength: 1, maxLength: 256, description: 'An agent name from GET /v1/models, or "default"' }),
    messages: Type.Array(Message, { minItems: 1, maxItems: config.maxMessagesPerRequest }),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    stream_options: Type.Optional(Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }), Type.Null()])),
    temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
    max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 128_000 }), Type.Null()])),
    max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 128_000 }), Type.Null()])),
    tools: Type.Optional(Type.Array(FunctionTool, { maxItems: 128, description: 'Client-side tools: a call to one ends the run with finish_reason "tool_calls"' })),
    tool_choice: Type.Optional(Type.Unknown({ description: '"auto" (default) or "none"; other choices are refused' })),
    response_format: Type.Optional(
      Type.Object({
        type: Type.Union([Type.Literal('text'), Type.Literal('json_object'), Type.Literal('json_schema')]),
        json_schema: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      }),
    ),
    metadata: Type.Optional(
      Type.Union([Type.Record(Type.String(), Type.String({ maxLength: 512 }), { description: 'session_id binds the call to a server-side session' }), Type.Null()]),
    ),
    n: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    logprobs: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    top_logprobs: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  });

  const Usage = Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer(), total_tokens: Type.Integer() });
  const ChatCompletion = Type.Object(
    {
      id: Type.String(),
      object: Type.Literal('chat.completion'),
      created: Type.Integer(),
      model: Type.String(),
      system_fingerprint: Type.Null(),
      choices: Type.Array(
        Type.Object({
          index: Type.Integer(),
          message: Type.Object({
            role: Type.Literal('assistant'),
            content: Type.Union([Type.String(), Type.Null()]),
            refusal: Type.Null(),
            reasoning_content: Type.Optional(Type.String()),
            tool_calls: Type.Optional(Type.Array(ToolCall)),
          }),
          logprobs: Type.Null(),
          finish_reason: Type.String({ description: 'stop | length | tool_calls | content_filter' }),
        }),
      ),
      usage: Usage,
    },
    { description: 'The answer (JSON), or with "stream": true a text/event-stream of chat.completion.chunk objects ending with `data: [DONE]`' },
  );
  return { ChatCompletionRequest, ChatCompletion };
}

const Model = Type.Object({ id: Type.String(), object: Type.Literal('model'), created: Type.Integer(), owned_by: Type.String() });
export const ModelSchema = Type.Object(Model.properties, { description: 'The agent, as an OpenAI model object' });
export const ModelList = Type.Object({ object: Type.Literal('list'), data: Type.Array(Model) }, { description: 'The agents this server answers as models' });

export const OpenAIErrorSchema = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String(),
      code: Type.Union([Type.String(), Type.Null()]),
      param: Type.Union([Type.String(), Type.Null()]),
    }),
  },
  { description: 'An error in OpenAI\'s shape' },
);

export type ChatCompletionRequest = Static<ReturnType<typeof chatSchemas>['ChatCompletionRequest']>;
