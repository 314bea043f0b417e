import { Type } from '../json-schema.js';

/**
 * The habits that make /api/v1/openapi.json a complete contract (docs/architecture.md, "Adding a
 * route"): every response status a route answers has a schema and a description; errors share one
 * `{detail, code}` schema; security is declared per route. Response schemas also drive Fastify's
 * serializer, so a field not listed never leaves the server.
 */

export const ErrorBody = Type.Object(
  {
    detail: Type.String({ maxLength: 4096, description: 'For people: what went wrong and what to do' }),
    code: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Z_]+$', description: 'For programs: a stable UPPER_SNAKE code (README, "Errors")' })),
  },
  { additionalProperties: true, description: 'Every error. Some add fields, e.g. SESSION_BUSY adds run_id' },
);

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid request: the detail names the field or limit (VALIDATION_FAILED), or the operation needs a setting (AUTH_REQUIRED)',
  401: 'Missing or invalid credentials (UNAUTHORIZED)',
  403: 'Authenticated, but not allowed (FORBIDDEN)',
  404: 'Unknown object (NOT_FOUND)',
  409: 'Conflict with the current state (the code says which)',
  413: 'The body is larger than BODY_LIMIT_BYTES (BODY_TOO_LARGE)',
  415: 'The body is not JSON, or is compressed (UNSUPPORTED_MEDIA_TYPE)',
  429: 'Rate limited (RATE_LIMITED); Retry-After says when to retry',
  500: 'A bug (INTERNAL_ERROR); the log has the request id',
  502: 'The model provider failed (UPSTREAM_*)',
  503: 'Unavailable for now: a feature is off, a store is down, the server is busy or shutting down (the code says which); Retry-After when retrying helps',
  504: 'The provider or the run took too long (UPSTREAM_TIMEOUT, RUN_DEADLINE_EXCEEDED)',
};

/** The errors any /api/v1 route may answer: bad input, credentials, the general rate limit, bugs, and a draining or overloaded server. */
export const COMMON_ERRORS = [400, 401, 429, 500, 503] as const;

/** `{status: errorSchema}` for the given statuses, each with its own description. */
export function errorResponses(...statuses: number[]): Record<number, object> {
  const responses: Record<number, object> = {};
  for (const status of [...new Set(statuses)].sort()) {
    responses[status] = { ...ErrorBody, description: ERROR_DESCRIPTIONS[status] ?? 'Error' };
  }
  return responses;
}

/** A success response: the schema with the description OpenAPI shows for its status. */
export function described<T extends object>(schema: T, description: string): T {
  return { ...schema, description };
}

/** Security of a route that takes the API key or a bearer token (either, when both are configured; none in open mode). */
export const CALLER_SECURITY: Array<Record<string, string[]>> = [{ apiKey: [] }, { bearer: [] }];
/** A caller route that an open server (no API key, no user auth) also answers without credentials. */
export const CALLER_OR_OPEN_SECURITY: Array<Record<string, string[]>> = [...CALLER_SECURITY, {}];
/** A route anyone may call (health, sign-up and login). */
export const PUBLIC: Array<Record<string, string[]>> = [];
/** A route for a logged-in user only. */
export const BEARER: Array<Record<string, string[]>> = [{ bearer: [] }];

const Usage = Type.Object({
  prompt_tokens: Type.Integer({ minimum: 0, format: 'int64' }),
  completion_tokens: Type.Integer({ minimum: 0, format: 'int64' }),
  total_tokens: Type.Integer({ minimum: 0, format: 'int64' }),
});

const event = (type: string, description: string, fields: Record<string, object>) =>
  Type.Object({ type: Type.Literal(type), ...fields }, { description });

/**
 * One Server-Sent Event's `data:` JSON. Each event also has `id: <run_id>:<seq>`; a `: ping`
 * comment keeps a quiet stream open. A stream ends with exactly one `done` or `error`.
 */
export const StreamEvent = Type.Union(
  [
    event('run_started', 'First event: the run and its session', { run_id: Type.String({ maxLength: 128 }), session_id: Type.Union([Type.String({ maxLength: 128 }), Type.Null()]) }),
    event('content', 'A text delta of the answer', { content: Type.String() }),
    event('reasoning', "A reasoning delta (providers that send reasoning_content)", { content: Type.String() }),
    event('tool_call', 'The model called a tool', { id: Type.String({ maxLength: 256 }), name: Type.String({ maxLength: 256 }), arguments: Type.String() }),
    event('tool_result', "A tool's result, as the model reads it", { id: Type.String({ maxLength: 256 }), name: Type.String({ maxLength: 256 }), result: Type.String() }),
    event('done', 'Terminal: the run ended normally', {
      run_id: Type.String({ maxLength: 128 }),
      session_id: Type.Union([Type.String({ maxLength: 128 }), Type.Null()]),
      stop_reason: Type.String({ enum: ['stop', 'length', 'max_steps', 'content_filter', 'cancelled'] }),
      usage: Usage,
    }),
    event('error', 'Terminal: the run failed; detail and code as in JSON errors', { run_id: Type.String({ maxLength: 128 }), detail: Type.String(), code: Type.String({ maxLength: 64 }) }),
  ],
  { description: 'The JSON in one event\'s "data:" line' },
);

/** A 200 that is either JSON or (with "stream": true, or always for the stream routes) an event stream. */
export function jsonOrStream(json: object | null, description: string): object {
  const stream = {
    schema: { ...StreamEvent, description: 'text/event-stream: frames of "id: <run_id>:<seq>" and "data: <one of these as JSON>", then a blank line' },
  };
  return {
    description,
    content: json === null ? { 'text/event-stream': stream } : { 'application/json': { schema: json }, 'text/event-stream': stream },
  };
}

export { Usage };
