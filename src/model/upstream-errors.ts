import { ChassisError } from '../errors.js';
import type { Config } from '../config.js';
import type { RunSignal } from '../run-signal.js';

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/**
 * The provider answered with an error: a non-2xx status, or an `error` object where a completion
 * or a stream chunk should be (`status` is null then). `body` is the provider's parsed answer.
 */
export class UpstreamHttpError extends Error {
  constructor(
    readonly status: number | null,
    readonly headers: UpstreamHeaders,
    readonly body: unknown,
  ) {
    super(status === null ? 'the model provider sent an error in its answer' : `the model provider answered HTTP ${status}`);
    this.name = 'UpstreamHttpError';
  }
}

const RETRYABLE_STATUSES = new Set([408, 409, 429]);
const CONTEXT_LENGTH = /context[_ ]length|maximum context|too many tokens|context window/i;

interface MapOptions {
  timedOut: boolean;
  aborted: boolean;
  /** Strings that must never reach a client (the provider key). */
  secrets: readonly string[];
}

/** Turns whatever the model call threw into the one error the client sees; provider bodies are trimmed and scrubbed. */
export function mapUpstreamError(error: unknown, options: MapOptions): ChassisError {
  if (error instanceof ChassisError) return error;
  if (options.timedOut) {
    // Not retried: a silent provider must cost the client one idle timeout, not three.
    return new ChassisError(504, 'UPSTREAM_TIMEOUT', 'The model provider did not answer in time', { cause: error });
  }
  if (options.aborted) {
    return abortError(error);
  }
  if (error instanceof UpstreamHttpError) {
    const status = error.status;
    const providerMessage = scrub(extractMessage(error.body), options.secrets);
    if (status === null) {
      // An error inside a 200 answer: the provider failed while answering.
      if (CONTEXT_LENGTH.test(providerMessage)) {
        return new ChassisError(400, 'CONTEXT_LENGTH_EXCEEDED', `The conversation is too long for the model${suffix(providerMessage)}`, { cause: error });
      }
      return new ChassisError(502, 'UPSTREAM_ERROR', `The model provider failed${suffix(providerMessage)}`, { cause: error, retryable: true });
    }
    const retryAfter = parseRetryAfter(error.headers);
    const headers: Record<string, string> = retryAfter === null ? {} : { 'retry-after': String(Math.ceil(retryAfter)) };
    const extra = { upstream_status: status, ...(retryAfter === null ? {} : { retry_after_seconds: retryAfter }) };
    if (status === 401 || status === 403) {
      return new ChassisError(502, 'UPSTREAM_AUTH_FAILED', 'The model provider rejected the server credentials: check OPENAI_API_KEY', { cause: error, extra });
    }
    if (status === 429) {
      return new ChassisError(502, 'UPSTREAM_RATE_LIMITED', `The model provider is rate limiting requests${suffix(providerMessage)}`, { cause: error, headers, retryable: true, extra });
    }
    if (status === 408) {
      return new ChassisError(504, 'UPSTREAM_TIMEOUT', 'The model provider timed out', { cause: error, retryable: true, extra });
    }
    if ((status === 400 || status === 413 || status === 422) && CONTEXT_LENGTH.test(providerMessage)) {
      return new ChassisError(400, 'CONTEXT_LENGTH_EXCEEDED', `The conversation is too long for the model${suffix(providerMessage)}`, { cause: error, extra });
    }
    if (status >= 500 || RETRYABLE_STATUSES.has(status)) {
      return new ChassisError(502, 'UPSTREAM_ERROR', `The model provider failed (HTTP ${status})${suffix(providerMessage)}`, { cause: error, retryable: true, extra });
    }
    return new ChassisError(502, 'UPSTREAM_BAD_REQUEST', `The model provider refused the request (HTTP ${status})${suffix(providerMessage)}`, { cause: error, extra });
  }
  return new ChassisError(502, 'UPSTREAM_UNAVAILABLE', 'The model provider could not be reached or dropped the connection', { cause: error, retryable: true });
}

/** The reason a run was aborted from our side (client gone, cancel, shutdown, deadline) is kept as the error. */
function abortError(error: unknown): ChassisError {
  if (error instanceof ChassisError) return error;
  return new ChassisError(499, 'CLIENT_DISCONNECTED', 'The request was aborted', { cause: error });
}

export function retryDelayMs(error: ChassisError, attempt: number, config: Config): number | null {
  if (!error.retryable) return null;
  const retryAfter = error.extra.retry_after_seconds;
  if (typeof retryAfter === 'number') {
    return retryAfter <= config.upstreamRetryAfterMaxSeconds ? retryAfter * 1000 : null;
  }
  const base = config.upstreamRetryBaseMs * 2 ** attempt;
  return Math.min(base, 8_000) * (0.75 + Math.random() * 0.5);
}

export function sleep(ms: number, signal: RunSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

function parseRetryAfter(headers: UpstreamHeaders): number | null {
  const get = (name: string): string | null => {
    const value = headers[name];
    return typeof value === 'string' ? value : null;
  };
  const ms = get('retry-after-ms');
  if (ms !== null && Number.isFinite(Number(ms))) return Number(ms) / 1000;
  const raw = get('retry-after');
  if (raw === null) return null;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

/** OpenAI's `{"error": {"message"}}`, and the `{"error": "..."}` / `{"message"}` shapes other providers use. */
function extractMessage(body: unknown): string {
  if (body === null || typeof body !== 'object') return '';
  const { error, message } = body as { error?: unknown; message?: unknown };
  if (typeof error === 'string') return error;
  if (error !== null && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') return (error as { message: string }).message;
  return typeof message === 'string' ? message : '';
}

/** Key-like runs: `sk-…`/`sk_…` style prefixes, `Bearer <token>`, and any long unbroken run of token characters. */
const KEY_LIKE = /\b(?:sk|pk|rk|key|api[_-]?key)[-_][A-Za-z0-9_\-.]{8,}|\bBearer\s+[A-Za-z0-9_\-.~+/=]{8,}|[A-Za-z0-9_\-+/=]{32,}/gi;
const PROVIDER_MESSAGE_MAX = 300;

/**
 * Redact first, then cut: cutting first could split a secret at the 300th character, and the
 * half that survives no longer matches anything. The configured key is removed wherever it occurs;
 * anything else shaped like a key (another provider's format, a key the provider echoed in part) too.
 */
export function scrub(message: string, secrets: readonly string[]): string {
  let clean = message.replace(/[\r\n\t]+/g, ' ');
  for (const secret of secrets) if (secret.length >= 4) clean = clean.split(secret).join('[redacted]');
  clean = clean.replace(KEY_LIKE, '[redacted]');
  return clean.length > PROVIDER_MESSAGE_MAX ? `${clean.slice(0, PROVIDER_MESSAGE_MAX)}…` : clean;
}

const suffix = (message: string) => (message === '' ? '' : `: ${message}`);
