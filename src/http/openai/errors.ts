import type { FastifyInstance } from 'fastify';
import { ChassisError } from '../../errors.js';
import { registerErrorHandling } from '../error-handler.js';

export interface OpenAIErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

/** OpenAI's `type` for an HTTP status: the SDKs pick their exception class by status, some clients branch on `type`. */
function typeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/**
 * Errors on the OpenAI surface in OpenAI's shape. `code` is our stable code in lower case (the
 * casing OpenAI uses), so a client sees the same meaning as on the native API; `param` names the
 * request field when one is at fault.
 */
export function openAIError(error: ChassisError): OpenAIErrorBody {
  const param = typeof error.extra.param === 'string' ? error.extra.param : null;
  return { error: { message: error.detail, type: typeOf(error.status), code: error.code.toLowerCase(), param } };
}

/** A 400 that names the request field at fault (OpenAI's `param`). */
export function invalidParam(param: string, message: string, code = 'VALIDATION_FAILED'): ChassisError {
  return new ChassisError(400, code, message, { extra: { param } });
}

/** Inside the surface's plugin: its errors (auth, rate limit, validation, runs) and unknown paths answer in OpenAI's shape. */
export function registerOpenAIErrors(app: FastifyInstance): void {
  registerErrorHandling(app, {
    body: openAIError,
    notFound: (method, path) => new ChassisError(404, 'NOT_FOUND', `Not found: ${method} ${path} (this server speaks /v1/chat/completions, /v1/responses and /v1/models)`),
  });
}
