import type { Static, TSchema } from 'typebox';
import type { Config } from '../../config.js';
import { Type } from '../../json-schema.js';

const nullable = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));
/** An object whose fields are written as they are (parts of OpenAI's shape we only pass through). */
const Open = (description: string) => Type.Object({}, { additionalProperties: true, description });

/**
 * OpenAI's Responses API request and response object, as far as this server reads and writes them.
 * Fields not listed are accepted and ignored (top_p, user, include, truncation, reasoning, …); the
 * ones that would change what an answer means and cannot be honoured are refused in
 * responses-request.ts. Built from the configured limits, like the Chat Completions schemas.
 */
export function responsesSchemas(config: Config) {
  const text = Type.String({ maxLength: config.maxMessageLength });
  const Part = Type.Object(
    { type: Type.String({ maxLength: 64 }), text: Type.Optional(text) },
    { description: 'A content part; only input_text (and output_text in assistant messages) are supported' },
  );
  const Item = Type.Object(
    {
      type: Type.Optional(Type.String({ maxLength: 64, description: 'message (default when role is set), function_call, function_call_output; reasoning items are ignored' })),
      role: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('system'), Type.Literal('developer'), Type.Literal('assistant')])),
      content: Type.Optional(Type.Union([text, Type.Array(Part, { maxItems: 256 })])),
      call_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
      name: Type.Optional(Type.String({ maxLength: 256 })),
      arguments: Type.Optional(Type.String({ maxLength: config.maxMessageLength })),
      output: Type.Optional(Type.Union([text, Type.Array(Part, { maxItems: 256 })])),
    },
    { description: 'An input item' },
  );
  const FunctionTool = Type.Object({
    type: Type.String({ maxLength: 64, description: 'Only "function" (client-side) tools; built-in tools are refused' }),
    name: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]{1,64}$' })),
    description: Type.Optional(Type.Union([Type.String({ maxLength: 8192 }), Type.Null()])),
    parameters: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
    strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  });
  const ResponseCreateRequest = Type.Object({
    model: Type.String({ minLength: 1, maxLength: 256, description: 'An agent name from GET /v1/models, or "default"' }),
    input: Type.Union([text, Type.Array(Item, { minItems: 1, maxItems: config.maxMessagesPerRequest })], {
      description: 'The new user text, or input items; with previous_response_id only what is new',
    }),
    instructions: nullable(text),
    previous_response_id: nullable(Type.String({ minLength: 1, maxLength: 128, description: 'Continue that response\'s conversation (needs ENABLE_PERSISTENCE)' })),
    store: nullable(Type.Boolean({ description: 'Default true: keep the response (GET /v1/responses/{id}, previous_response_id); false runs statelessly' })),
    stream: nullable(Type.Boolean()),
    tools: Type.Optional(Type.Array(FunctionTool, { maxItems: 128, description: 'Client-side function tools: a call to one ends the response with a function_call item' })),
    tool_choice: Type.Optional(Type.Unknown({ description: '"auto" (default) or "none"; other choices are refused' })),
    temperature: nullable(Type.Number({ minimum: 0, maximum: 2 })),
    max_output_tokens: nullable(Type.Integer({ minimum: 1, maximum: 128_000, format: 'int32', description: 'The most tokens of each model call of the run' })),
    metadata: nullable(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), { maxProperties: 16, description: 'Kept with the response and echoed' })),
    text: nullable(
      Type.Object({
        format: Type.Optional(
          Type.Object({
            type: Type.Union([Type.Literal('text'), Type.Literal('json_object'), Type.Literal('json_schema')]),
            name: Type.Optional(Type.String({ maxLength: 64 })),
            schema: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
            description: Type.Optional(Type.String({ maxLength: 8192 })),
            strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
          }),
        ),
      }),
    ),
  });

  const count = () => Type.Integer({ minimum: 0, format: 'int64' });
  const Usage = Type.Object({
    input_tokens: count(),
    input_tokens_details: Type.Object({ cached_tokens: count() }),
    output_tokens: count(),
    output_tokens_details: Type.Object({ reasoning_tokens: count() }),
    total_tokens: count(),
  });
  const ResponseObject = Type.Object(
    {
      id: Type.String(),
      object: Type.Literal('response'),
      created_at: Type.Integer({ minimum: 0, format: 'int64', description: 'Unix seconds' }),
      status: Type.String({ description: 'completed | incomplete | failed | cancelled | in_progress' }),
      background: Type.Boolean(),
      error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
      incomplete_details: Type.Union([Type.Object({ reason: Type.String() }), Type.Null()]),
      instructions: Type.Union([Type.String(), Type.Null()]),
      max_output_tokens: Type.Union([Type.Integer({ minimum: 1, format: 'int32' }), Type.Null()]),
      model: Type.String(),
      output: Type.Array(Open('An output item: message (output_text content), function_call, or reasoning')),
      parallel_tool_calls: Type.Boolean(),
      previous_response_id: Type.Union([Type.String(), Type.Null()]),
      store: Type.Boolean(),
      temperature: Type.Union([Type.Number(), Type.Null()]),
      text: Type.Object({ format: Open('The text format of the request') }),
      tool_choice: Type.String(),
      tools: Type.Array(Open('A function tool of the request')),
      top_p: Type.Null(),
      truncation: Type.String(),
      usage: Type.Union([Usage, Type.Null()]),
      metadata: Type.Record(Type.String(), Type.String()),
    },
    { description: 'The response (JSON), or with "stream": true a text/event-stream of Responses events (event: <type>, data: {type, sequence_number, …})' },
  );
  return { ResponseCreateRequest, ResponseObject };
}

export type ResponseCreateRequest = Static<ReturnType<typeof responsesSchemas>['ResponseCreateRequest']>;
export type ResponseInputItem = Exclude<ResponseCreateRequest['input'], string>[number];
