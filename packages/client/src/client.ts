import createClient, { type Client } from 'openapi-fetch';
import { ChassisApiError } from './errors.js';
import type { paths } from './generated/openapi.js';
import { CompletionStream, type StreamOptions } from './stream.js';
import { memoryTokenStore, type StoredTokens, type TokenStore } from './tokens.js';

type Json<T> = T extends { content: { 'application/json': infer Body } } ? Body : never;
type Ok<Operation> = Operation extends { responses: { 200: infer R } } ? Json<R> : Operation extends { responses: { 201: infer R } } ? Json<R> : never;
type BodyOf<Operation> = Operation extends { requestBody?: infer B } ? Json<NonNullable<B>> : never;

export type CompletionRequest = BodyOf<paths['/api/v1/agent/completion']['post']> & {
  /** A named agent (once the server has agents: GET /api/v1/agents). */
  agent?: string;
};
export type CompletionResponse = Ok<paths['/api/v1/agent/completion']['post']>;
export type RunStatus = Ok<paths['/api/v1/agent/runs/{run_id}']['get']>;
export type SessionInfo = Ok<paths['/api/v1/agent/session/{id}']['get']>;
export type SessionList = Ok<paths['/api/v1/agent/sessions']['get']>;
export type SessionSummary = SessionList['sessions'][number];
export type MessagePage = Ok<paths['/api/v1/agent/session/{id}/messages']['get']>;
export type StoredMessage = MessagePage['messages'][number];
export type AccessPatch = BodyOf<paths['/api/v1/agent/session/{id}/access']['patch']>;
export type AccessInfo = Ok<paths['/api/v1/agent/session/{id}/access']['patch']>;
export type TokenResponse = Ok<paths['/api/v1/auth/login']['post']>;
export type Me = Ok<paths['/api/v1/auth/me']['get']>;
export type RegisterResponse = Ok<paths['/api/v1/auth/register']['post']>;

/** An agent as GET /api/v1/agents lists it (the route arrives with the agents-from-files work). */
export interface AgentSummary {
  name: string;
  description?: string;
  model?: string | null;
  tools?: string[];
  [key: string]: unknown;
}

export interface Approval {
  approval_id: string;
  tool_call_id: string;
  name: string;
  arguments: string;
  expires_at: string;
  [key: string]: unknown;
}

export interface ChassisClientOptions {
  /** Server origin, e.g. http://localhost:8000 (default: CHASSIS_URL is read by the CLI only). */
  baseUrl: string;
  /** Sent as X-API-Key (when the server sets CHASSIS_API_KEY). Takes precedence over a login. */
  apiKey?: string;
  /** With an API key: the end user you act for (X-User-ID). */
  userId?: string;
  /** Where a login's tokens live (default: memory). */
  tokens?: TokenStore;
  /** Told when the login changes: after login, refresh, logout, or a refresh the server refused. */
  onTokensChange?: (tokens: StoredTokens | null) => void;
  fetch?: typeof globalThis.fetch;
}

/** Refresh this long before the access token expires, so a request never races its expiry. */
const REFRESH_MARGIN_MS = 30_000;

/**
 * The one way the playground, the CLI and your code talk to Agent Chassis. `api` is a fully typed
 * client generated from the server's OpenAPI document (every route, every body); the methods here
 * add what OpenAPI cannot say: streams that resume and cancel, and logins that refresh by themselves.
 */
export class ChassisClient {
  readonly api: Client<paths>;
  readonly baseUrl: string;
  private apiKey: string | undefined;
  private userId: string | undefined;
  private readonly tokens: TokenStore;
  private readonly fetchImpl: typeof globalThis.fetch;
  private refreshing: Promise<StoredTokens | null> | null = null;

  constructor(private readonly options: ChassisClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.userId = options.userId;
    this.tokens = options.tokens ?? memoryTokenStore();
    // Bound: a bare `fetch` reference loses its `this` (window) in browsers.
    const base = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.fetchImpl = base;
    this.api = createClient<paths>({ baseUrl: this.baseUrl, fetch: (request: Request) => this.send(request) });
  }

  // ---- credentials

  /** True when requests carry an API key or a login. */
  get authenticated(): boolean {
    return this.apiKey !== undefined || this.tokens.get() !== null;
  }

  setApiKey(apiKey: string | undefined, userId?: string): void {
    this.apiKey = apiKey === '' ? undefined : apiKey;
    this.userId = userId === '' ? undefined : userId;
  }

  // ---- accounts (ENABLE_USER_AUTH=true on the server)

  register(email: string, password: string, displayName?: string): Promise<RegisterResponse> {
    return this.unwrap(this.api.POST('/api/v1/auth/register', { body: { email, password, ...(displayName ? { display_name: displayName } : {}) } }));
  }

  verifyEmail(email: string, code: string) {
    return this.unwrap(this.api.POST('/api/v1/auth/verify-email', { body: { email, code } }));
  }

  resendVerification(email: string) {
    return this.unwrap(this.api.POST('/api/v1/auth/resend-verification', { body: { email } }));
  }

  /** Logs in and keeps the tokens; later requests carry them and refresh them when needed. */
  async login(email: string, password: string): Promise<TokenResponse> {
    const tokens = await this.unwrap(this.api.POST('/api/v1/auth/login', { body: { email, password } }));
    this.storeTokens(tokens);
    return tokens;
  }

  /** Ends the login on the server (its refresh token and access tokens) and forgets it here. */
  async logout(): Promise<void> {
    const tokens = this.tokens.get();
    this.storeTokens(null);
    if (tokens !== null) await this.unwrap(this.api.POST('/api/v1/auth/logout', { body: { refresh_token: tokens.refresh_token } })).catch(() => undefined);
  }

  me(): Promise<Me> {
    return this.unwrap(this.api.GET('/api/v1/auth/me'));
  }

  /** Exchanges the refresh token now (requests also do it by themselves when the access token is due). */
  async refresh(): Promise<StoredTokens | null> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  // ---- runs

  /** One completion as JSON (the whole answer at once). */
  complete(body: CompletionRequest, init: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<CompletionResponse> {
    // The route documents both media types (JSON, and SSE when stream is true); with stream false it is JSON.
    return this.unwrap(
      this.api.POST('/api/v1/agent/completion', {
        body: { ...body, stream: false } as BodyOf<paths['/api/v1/agent/completion']['post']>,
        headers: init.idempotencyKey === undefined ? {} : { 'idempotency-key': init.idempotencyKey },
        signal: init.signal,
      }),
    ) as Promise<unknown> as Promise<CompletionResponse>;
  }

  /**
   * Starts a streamed completion: iterate the result for typed events. The stream resumes by itself
   * after a dropped connection; `cancel()` stops the run. Errors before the first event (bad input,
   * rate limit, model not configured) throw ChassisApiError from the iteration.
   */
  stream(body: CompletionRequest, options: StreamOptions & { idempotencyKey?: string } = {}): CompletionStream {
    const open = async (signal: AbortSignal) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
      if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
      return this.eventStream(new Request(`${this.baseUrl}/api/v1/agent/completion`, { method: 'POST', headers, body: JSON.stringify({ ...body, stream: true }), signal }));
    };
    return new CompletionStream(open, this.streamTransport(), options);
  }

  /** Joins a run's stream (e.g. after a page reload): replays the events after `after` (default: all), then follows it live. */
  resume(runId: string, options: StreamOptions & { after?: number } = {}): CompletionStream {
    const transport = this.streamTransport();
    const open = (signal: AbortSignal) => transport.follow(runId, options.after ?? 0, signal);
    return new CompletionStream(open, transport, options, runId);
  }

  run(runId: string): Promise<RunStatus> {
    return this.unwrap(this.api.GET('/api/v1/agent/runs/{run_id}', { params: { path: { run_id: runId } } }));
  }

  cancelRun(runId: string): Promise<RunStatus> {
    return this.unwrap(this.api.POST('/api/v1/agent/runs/{run_id}/cancel', { params: { path: { run_id: runId } } }));
  }

  // ---- approvals (the routes arrive with the tool-approvals work; these call them by path until then)

  listApprovals(runId: string): Promise<{ approvals: Approval[] }> {
    return this.json('GET', `/api/v1/agent/runs/${encodeURIComponent(runId)}/approvals`);
  }

  decideApproval(runId: string, approvalId: string, decision: 'approve' | 'deny', reason?: string): Promise<Record<string, unknown>> {
    return this.json('POST', `/api/v1/agent/runs/${encodeURIComponent(runId)}/approvals/${encodeURIComponent(approvalId)}`, {
      decision,
      ...(reason === undefined ? {} : { reason }),
    });
  }

  // ---- agents and tools

  /** Named agents; an empty list when the server has none (or predates agents). */
  async listAgents(): Promise<AgentSummary[]> {
    try {
      const body = await this.json<{ agents?: AgentSummary[] } | AgentSummary[]>('GET', '/api/v1/agents');
      return Array.isArray(body) ? body : (body.agents ?? []);
    } catch (error) {
      if (error instanceof ChassisApiError && error.status === 404 && error.code === 'NOT_FOUND') return [];
      throw error;
    }
  }

  async listTools(): Promise<Array<{ name: string; description: string; source: string }>> {
    const body = await this.json<{ tools: Array<{ name: string; description: string; source: string }> }>('GET', '/api/v1/tools');
    return body.tools;
  }

  // ---- sessions

  listSessions(options: { limit?: number; cursor?: string } = {}): Promise<SessionList> {
    const query: { limit?: number; cursor?: string } = {};
    if (options.limit !== undefined) query.limit = options.limit;
    if (options.cursor !== undefined) query.cursor = options.cursor;
    return this.unwrap(this.api.GET('/api/v1/agent/sessions', { params: { query } }));
  }

  getSession(sessionId: string): Promise<SessionInfo> {
    return this.unwrap(this.api.GET('/api/v1/agent/session/{id}', { params: { path: { id: sessionId } } }));
  }

  /** A page of stored messages, oldest first: the latest by default, `before` pages back, `after` forward. */
  messages(sessionId: string, options: { limit?: number; before?: number; after?: number } = {}): Promise<MessagePage> {
    const query: Record<string, string> = {};
    for (const [name, value] of Object.entries(options)) if (value !== undefined) query[name] = String(value);
    return this.unwrap(this.api.GET('/api/v1/agent/session/{id}/messages', { params: { path: { id: sessionId }, query } }));
  }

  deleteSession(sessionId: string) {
    return this.unwrap(this.api.DELETE('/api/v1/agent/session/{id}', { params: { path: { id: sessionId } } }));
  }

  setSessionAccess(sessionId: string, patch: AccessPatch): Promise<AccessInfo> {
    return this.unwrap(this.api.PATCH('/api/v1/agent/session/{id}/access', { params: { path: { id: sessionId } }, body: patch }));
  }

  // ---- plumbing

  /** A JSON call by path, for routes newer than this client's generated types. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(
      new Request(`${this.baseUrl}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    if (!response.ok) throw await ChassisApiError.fromResponse(response);
    return (await response.json()) as T;
  }

  private async unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
    const { data, error, response } = await call;
    if (!response.ok) {
      const body = error !== null && typeof error === 'object' ? (error as Record<string, unknown>) : {};
      throw ChassisApiError.fromBody(response.status, body, response.headers.get('retry-after'), typeof error === 'string' ? error : '');
    }
    return data as T;
  }

  private streamTransport() {
    return {
      follow: (runId: string, afterSeq: number, signal: AbortSignal) =>
        this.eventStream(
          new Request(`${this.baseUrl}/api/v1/agent/runs/${encodeURIComponent(runId)}/stream`, {
            headers: { accept: 'text/event-stream', ...(afterSeq > 0 ? { 'last-event-id': `${runId}:${afterSeq}` } : {}) },
            signal,
          }),
        ),
      cancel: (runId: string) => this.cancelRun(runId),
    };
  }

  private async eventStream(request: Request): Promise<Response> {
    const response = await this.send(request);
    if (!response.ok || response.body === null) throw await ChassisApiError.fromResponse(response);
    return response;
  }

  /** Every request goes through here: credentials on, a due access token refreshed first, one retry after a 401. */
  private async send(request: Request): Promise<Response> {
    const isAuthRoute = new URL(request.url).pathname.startsWith('/api/v1/auth/') && !request.url.endsWith('/auth/me');
    let tokens = this.tokens.get();
    if (this.apiKey === undefined && tokens !== null && !isAuthRoute && tokens.expires_at - REFRESH_MARGIN_MS < Date.now()) {
      tokens = await this.refresh();
    }
    const retry = this.apiKey === undefined && tokens !== null && !isAuthRoute ? request.clone() : null;
    const response = await this.fetchImpl(this.withCredentials(request, tokens));
    if (response.status !== 401 || retry === null) return response;
    const renewed = await this.refresh();
    if (renewed === null) return response;
    await response.body?.cancel().catch(() => undefined);
    return this.fetchImpl(this.withCredentials(retry, renewed));
  }

  private withCredentials(request: Request, tokens: StoredTokens | null): Request {
    if (this.apiKey !== undefined) {
      request.headers.set('x-api-key', this.apiKey);
      if (this.userId !== undefined) request.headers.set('x-user-id', this.userId);
    } else if (tokens !== null) {
      request.headers.set('authorization', `Bearer ${tokens.access_token}`);
    }
    return request;
  }

  private async doRefresh(): Promise<StoredTokens | null> {
    const current = this.tokens.get();
    if (current === null) return null;
    const response = await this.fetchImpl(
      new Request(`${this.baseUrl}/api/v1/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: current.refresh_token }) }),
    );
    if (response.ok) return this.storeTokens((await response.json()) as TokenResponse);
    // Refused (expired, revoked, reused): the login is over. Anything else (503, 429) keeps it for a later try.
    if (response.status === 400 || response.status === 401 || response.status === 403) {
      this.storeTokens(null);
      return null;
    }
    throw await ChassisApiError.fromResponse(response);
  }

  private storeTokens(tokens: TokenResponse | null): StoredTokens | null {
    const stored = tokens === null ? null : { access_token: tokens.access_token, refresh_token: tokens.refresh_token, expires_at: Date.now() + tokens.expires_in * 1000 };
    this.tokens.set(stored);
    this.options.onTokensChange?.(stored);
    return stored;
  }
}
