import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ChassisError } from '../errors.js';
import { API_HEADERS } from './security-headers.js';

/** The JSON body of every error: `detail` for people, `code` for programs. */
export function errorBody(error: ChassisError): Record<string, unknown> {
  return { detail: error.detail, code: error.code, ...error.extra };
}

/** Anything thrown anywhere becomes a ChassisError here; 5xx causes go to the log, never to the client. */
export function toChassisError(error: unknown): ChassisError {
  if (error instanceof ChassisError) return error;
  const fastifyError = error as Partial<FastifyError> & { validation?: unknown };
  if (fastifyError.validation) {
    return new ChassisError(400, 'VALIDATION_FAILED', `Invalid request: ${fastifyError.message ?? 'validation failed'}`);
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ChassisError(413, 'BODY_TOO_LARGE', 'Request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ChassisError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported Content-Type: send application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ChassisError(400, 'VALIDATION_FAILED', 'The request body is empty: send a JSON object');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ChassisError(400, 'VALIDATION_FAILED', 'The request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ChassisError(400, 'VALIDATION_FAILED', 'Content-Length does not match the body');
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Fastify's own client errors (bad JSON, proto poisoning, …): their messages are safe and short.
    const detail = error instanceof SyntaxError ? 'The request body is not valid JSON' : (fastifyError.message ?? 'Bad request');
    return new ChassisError(status === 415 ? 400 : status, 'VALIDATION_FAILED', detail);
  }
  return new ChassisError(500, 'INTERNAL_ERROR', 'Internal server error', { cause: error });
}

/**
 * Only unexpected failures log their cause (with its stack). Known failures log the mapped, scrubbed
 * detail: a provider's raw error may echo secrets such as the API key it refused.
 */
export function logError(log: FastifyBaseLogger, error: ChassisError): void {
  const fields = { code: error.code, status: error.status, ...error.extra };
  if (error.code === 'INTERNAL_ERROR') log.error({ ...fields, err: error.cause ?? error }, error.detail);
  else if (error.status >= 500) log.warn(fields, error.detail);
  else log.info(fields, error.detail);
}

export interface ErrorSurface {
  /** The body an error is sent as (default: `{detail, code}`; the OpenAI surface has its own shape). */
  body?(error: ChassisError): object;
  /** The 404 of an unknown path (default: names the method and path). */
  notFound?(method: string, path: string): ChassisError;
  /** A known path with another method: its 405, or null when the path is unknown. */
  wrongMethod?(method: string, path: string): ChassisError | null;
}

const unknownPath = (method: string, path: string) => new ChassisError(404, 'NOT_FOUND', `Not found: ${method} ${path}`);

/**
 * One error handler for the app or one surface of it: anything thrown is mapped, logged and sent
 * in the surface's shape, with its status and headers (Retry-After, …).
 */
export function registerErrorHandling(app: FastifyInstance, surface: ErrorSurface = {}): void {
  const body = surface.body ?? errorBody;
  const send = (reply: FastifyReply, error: ChassisError) => reply.code(error.status).headers(error.headers).send(body(error));
  app.setErrorHandler((error, request: FastifyRequest, reply: FastifyReply) => {
    const mapped = toChassisError(error);
    logError(request.log, mapped);
    return send(reply, mapped);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const notAllowed = surface.wrongMethod?.(request.method, path);
    return send(reply, notAllowed ?? (surface.notFound ?? unknownPath)(request.method, path));
  });
}

/**
 * Requests Node's HTTP parser refuses before any route sees them (bad framing, bytes past a
 * Content-Length, oversized headers, a request that took too long to arrive) still get a JSON
 * `{detail, code}`, then the connection is closed: after a framing error nothing on it can be trusted.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, detail] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'The request headers are too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'The request did not arrive in time']
        : [400, 'Bad Request', 'Malformed HTTP request (check its framing and Content-Length)'];
  const body = JSON.stringify({ detail, code: 'VALIDATION_FAILED' });
  const headers = Object.entries(API_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\n${headers}Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
