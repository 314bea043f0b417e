import { ChassisApiError } from '@agent-chassis/client';

/** A sentence a person can act on, for any failure the client reports. */
export function explain(error: unknown): string {
  if (error instanceof ChassisApiError) return explainCode(error.code, error.detail, error.retryAfterSeconds);
  if (error instanceof TypeError) return 'The server could not be reached. Check that it is running and try again.';
  return error instanceof Error ? error.message : String(error);
}

export function explainCode(code: string, detail: string, retryAfterSeconds: number | null = null): string {
  switch (code) {
    case 'RATE_LIMITED':
      return retryAfterSeconds === null ? `Too many requests. Try again in a moment. (${detail})` : `Too many requests. Try again in ${retryAfterSeconds} s.`;
    case 'MODEL_NOT_CONFIGURED':
      // The server's detail names the settings to change.
      return `The server has no model: ${detail}`;
    case 'UPSTREAM_UNAVAILABLE':
    case 'UPSTREAM_ERROR':
    case 'UPSTREAM_TIMEOUT':
    case 'UPSTREAM_AUTH_FAILED':
    case 'UPSTREAM_RATE_LIMITED':
    case 'UPSTREAM_BAD_REQUEST':
      return `The model provider failed (${code}): ${detail}`;
    case 'UNAUTHORIZED':
      return `Not signed in, or the credentials are wrong: ${detail}`;
    case 'RUN_CANCELLED':
      return 'Cancelled.';
    case 'SERVER_BUSY':
    case 'SHUTTING_DOWN':
      return `The server is busy: ${detail}${retryAfterSeconds !== null ? ` Try again in ${retryAfterSeconds} s.` : ''}`;
    default:
      return `${detail} (${code})`;
  }
}
