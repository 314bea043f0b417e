/**
 * One error type for everything the API can answer with. `code` is stable (clients branch on it),
 * `detail` is for humans. Mapped to HTTP (and to stream `error` events) in one place: http/errors.ts.
 */
export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'BODY_TOO_LARGE'
  | 'JSON_TOO_DEEP'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'SESSION_BUSY'
  | 'AUTH_REQUIRED'
  | 'RATE_LIMITED'
  | 'FEATURE_DISABLED'
  | 'MODEL_NOT_CONFIGURED'
  | 'SERVER_BUSY'
  | 'SHUTTING_DOWN'
  | 'STORE_UNAVAILABLE'
  | 'UPSTREAM_ERROR'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_AUTH_FAILED'
  | 'UPSTREAM_RATE_LIMITED'
  | 'UPSTREAM_BAD_REQUEST'
  | 'UPSTREAM_TIMEOUT'
  | 'CONTEXT_LENGTH_EXCEEDED'
  | 'RUN_DEADLINE_EXCEEDED'
  | 'RUN_CANCELLED'
  | 'CLIENT_DISCONNECTED'
  | 'TOOL_TIMEOUT'
  | 'INTERNAL_ERROR'
  | 'AGENT_NOT_FOUND'
  | 'AGENT_OVERRIDE_NOT_ALLOWED'
  | 'AGENT_MISMATCH'
  | 'RESPONSE_FORMAT_INVALID'
  | (string & {});

export interface ChassisErrorOptions {
  cause?: unknown;
  /** Extra response headers, e.g. Retry-After. */
  headers?: Record<string, string>;
  /** For upstream failures: would the same call succeed if tried again? */
  retryable?: boolean;
  /** Extra JSON fields beside detail and code. */
  extra?: Record<string, unknown>;
}

export class ChassisError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly headers: Record<string, string>;
  readonly retryable: boolean;
  readonly extra: Record<string, unknown>;

  constructor(status: number, code: ErrorCode, detail: string, options: ChassisErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChassisError';
    this.status = status;
    this.code = code;
    this.headers = options.headers ?? {};
    this.retryable = options.retryable ?? false;
    this.extra = options.extra ?? {};
  }

  get detail(): string {
    return this.message;
  }
}

export const badRequest = (detail: string, extra?: Record<string, unknown>) =>
  new ChassisError(400, 'VALIDATION_FAILED', detail, { extra });
export const unauthorized = (detail = 'Not authenticated') => new ChassisError(401, 'UNAUTHORIZED', detail);
export const forbidden = (detail = 'Not allowed') => new ChassisError(403, 'FORBIDDEN', detail);
export const notFound = (detail = 'Not found') => new ChassisError(404, 'NOT_FOUND', detail);
export const featureDisabled = (detail: string) => new ChassisError(503, 'FEATURE_DISABLED', detail);

/** Errors from the store become 503 (never a 500 with SQL in it): the client may retry. */
export function storeUnavailable(cause: unknown): ChassisError {
  return new ChassisError(503, 'STORE_UNAVAILABLE', 'The database is unavailable; retry shortly', { cause, headers: { 'retry-after': '2' } });
}
