/**
 * Every failure the server reports, as one error type: `status` and `code` for programs (the
 * server's stable UPPER_SNAKE codes), `detail` for people, and `retryAfterSeconds` when the
 * server said when to try again (429, 503).
 */
export class ChassisApiError extends Error {
  override readonly name = 'ChassisApiError';

  constructor(
    /** HTTP status; 0 when the server could not be reached or the stream could not be resumed. */
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly retryAfterSeconds: number | null = null,
    /** The whole error body (some errors carry extra fields, e.g. `run_id` of SESSION_BUSY). */
    readonly body: Record<string, unknown> = {},
  ) {
    super(retryAfterSeconds === null ? `${code}: ${detail}` : `${code}: ${detail} (retry in ${retryAfterSeconds} s)`);
  }

  /** Reads a non-2xx answer; a body that is not our JSON still gives a useful message. */
  static async fromResponse(response: Response): Promise<ChassisApiError> {
    const text = await response.text().catch(() => '');
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed !== null && typeof parsed === 'object') body = parsed as Record<string, unknown>;
    } catch {
      // not JSON: keep the text as the detail
    }
    return ChassisApiError.fromBody(response.status, body, response.headers.get('retry-after'), text);
  }

  static fromBody(status: number, body: Record<string, unknown>, retryAfter: string | null, fallbackText = ''): ChassisApiError {
    const detail = typeof body.detail === 'string' ? body.detail : fallbackText.slice(0, 300) || `HTTP ${status}`;
    const code = typeof body.code === 'string' ? body.code : codeOfStatus(status);
    return new ChassisApiError(status, code, detail, parseRetryAfter(retryAfter), body);
  }
}

function codeOfStatus(status: number): string {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 429) return 'RATE_LIMITED';
  return status >= 500 ? 'SERVER_ERROR' : 'HTTP_ERROR';
}

/** Retry-After is seconds or an HTTP date. */
export function parseRetryAfter(value: string | null): number | null {
  if (value === null || value.trim() === '') return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}
