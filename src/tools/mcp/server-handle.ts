import type { FastifyBaseLogger } from 'fastify';
import type { McpInstrument } from '../../observability/types.js';
import type { McpServerSpec } from './config-file.js';
import { errorText, McpCallFailure, openConnection, type McpConnection, type McpToolInfo, type TransportKind } from './connection.js';

export type ServerState = 'connecting' | 'ready' | 'down' | 'closed';

export interface McpServerStatus {
  name: string;
  state: ServerState;
  transport: TransportKind | null;
  tools: number;
  lastError: string | null;
  /** Marked `"required": true` in the MCP config: GET /ready fails while it is not connected. */
  required: boolean;
}

export interface ServerHandleOptions {
  connectTimeoutMs: number;
  clientVersion: string;
  log: FastifyBaseLogger;
  instrument?: McpInstrument;
  /** The tool list changed: a first connect, a reconnect, or the server's list_changed notification. */
  onToolsChanged(): void;
}

const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
/** A connection that lived this long was healthy: its loss starts the backoff from the beginning. */
const STABLE_AFTER_MS = 60_000;

/** The wait before reconnecting after `failures` failures in a row: at once, then 1 s doubling to 60 s. */
export function backoffMs(failures: number): number {
  return failures <= 1 ? 0 : Math.min(BACKOFF_BASE_MS * 2 ** (failures - 2), BACKOFF_MAX_MS);
}

class McpServerUnavailable extends Error {}

/**
 * One configured MCP server over its whole life: connects in the background, keeps the last
 * tool list it saw (so tool names stay put while it is down), reconnects with backoff when the
 * process exits or the session drops, and sends calls to the current connection.
 */
export class McpServerHandle {
  state: ServerState = 'connecting';
  /** The last list the server gave; kept while it is down, so its tools stay callable (and trigger the reconnect). */
  tools: McpToolInfo[] = [];
  /** Resolves after the first connection attempt, whatever its outcome. */
  readonly firstAttempt: Promise<void>;

  private connection: McpConnection | undefined;
  private connecting: Promise<McpConnection> | undefined;
  /** Bumped whenever a connection is replaced, so late events from an old one are ignored. */
  private generation = 0;
  private failures = 0;
  private nextAttemptAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastError: string | null = null;
  private readySince = 0;
  private knownKind: TransportKind | undefined;
  private refreshing = false;
  private refreshAgain = false;
  private readonly closed = new AbortController();

  private endFirstAttempt!: () => void;

  constructor(
    readonly spec: McpServerSpec,
    private readonly options: ServerHandleOptions,
  ) {
    this.firstAttempt = new Promise((resolve) => (this.endFirstAttempt = resolve));
  }

  /** Starts connecting in the background. */
  start(): void {
    if (this.state !== 'connecting' || this.generation > 0) return;
    this.connect().then(this.endFirstAttempt, this.endFirstAttempt);
  }

  get name(): string {
    return this.spec.name;
  }

  get instrument(): McpInstrument | undefined {
    return this.options.instrument;
  }

  status(): McpServerStatus {
    return {
      name: this.name,
      state: this.state,
      transport: this.connection?.kind ?? this.knownKind ?? null,
      tools: this.tools.length,
      lastError: this.lastError,
      required: this.spec.required === true,
    };
  }

  /** Calls a tool on the server, reconnecting first when the server is down and its backoff has passed. */
  async call(tool: string, args: unknown, signal: AbortSignal, timeoutMs: number, resent = false): ReturnType<McpConnection['callTool']> {
    const connection = await this.ready(signal);
    try {
      const result = await connection.callTool(tool, args, signal, timeoutMs);
      this.failures = 0;
      return result;
    } catch (error) {
      if (!(error instanceof McpCallFailure)) throw error;
      if (error.kind === 'answered') {
        this.failures = 0;
        throw error;
      }
      this.lost(connection, error.message);
      if (error.kind === 'transport' || resent) throw error;
      // The server forgot our session (it restarted) and never saw the call: new session, send it once more.
      this.options.log.info({ mcpServer: this.name }, 'MCP session expired; starting a new one');
      return this.call(tool, args, signal, timeoutMs, true);
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.endFirstAttempt();
    this.closed.abort();
    clearTimeout(this.retryTimer);
    this.generation++;
    const connection = this.connection;
    this.connection = undefined;
    await Promise.all([connection?.close(), this.connecting?.catch(() => {})]);
  }

  private async ready(signal: AbortSignal): Promise<McpConnection> {
    if (this.state === 'closed') throw new McpServerUnavailable(`the MCP server '${this.name}' is shut down`);
    if (this.connection !== undefined) return this.connection;
    const wait = this.nextAttemptAt - Date.now();
    if (this.connecting === undefined && wait > 0) {
      throw new McpServerUnavailable(
        // The model gets no reason: it may name internal hosts and ports (the log has it, with lastError in status()).
        `the MCP server '${this.name}' is unavailable; the next attempt to reach it is in ${Math.ceil(wait / 1000)} s`,
      );
    }
    const connecting = this.connect();
    return new Promise<McpConnection>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      connecting.then(resolve, (error: unknown) => reject(new McpServerUnavailable(`the MCP server '${this.name}' could not be reached: ${errorText(error)}`))).finally(
        () => signal.removeEventListener('abort', onAbort),
      );
    });
  }

  private connect(): Promise<McpConnection> {
    if (this.connecting !== undefined) return this.connecting;
    clearTimeout(this.retryTimer);
    this.state = 'connecting';
    const generation = ++this.generation;
    const isCurrent = () => generation === this.generation && this.state !== 'closed';
    const connecting = openConnection(this.spec, {
      timeoutMs: this.options.connectTimeoutMs,
      clientVersion: this.options.clientVersion,
      log: this.options.log,
      injectHeaders: this.options.instrument?.inject,
      signal: this.closed.signal,
      knownKind: this.knownKind,
      onToolsChanged: () => {
        if (isCurrent()) void this.refresh(generation);
      },
      onLost: (reason) => {
        if (isCurrent() && this.connection !== undefined) this.lost(this.connection, reason);
      },
    }).then(
      async ({ connection, tools }) => {
        this.connecting = undefined;
        if (!isCurrent()) {
          await connection.close();
          throw new McpServerUnavailable(`the MCP server '${this.name}' is shut down`);
        }
        this.connection = connection;
        this.knownKind = connection.kind;
        this.state = 'ready';
        this.readySince = Date.now();
        this.lastError = null;
        this.tools = tools;
        this.options.log.info({ mcpServer: this.name, transport: connection.kind, tools: tools.length }, 'MCP server connected');
        this.options.onToolsChanged();
        return connection;
      },
      (error: unknown) => {
        this.connecting = undefined;
        if (isCurrent()) this.fail(errorText(error), 'MCP server could not be reached; its tools are unavailable until it is');
        throw error;
      },
    );
    this.connecting = connecting;
    return connecting;
  }

  /** The connection ended by itself (process exit, dropped session, transport failure). */
  private lost(connection: McpConnection, reason: string): void {
    if (connection !== this.connection || this.state === 'closed') return;
    this.connection = undefined;
    this.generation++;
    void connection.close();
    if (Date.now() - this.readySince >= STABLE_AFTER_MS) this.failures = 0;
    this.fail(reason, 'MCP server connection lost');
  }

  private fail(reason: string, message: string): void {
    this.failures++;
    this.lastError = reason;
    this.state = 'down';
    const delay = backoffMs(this.failures);
    this.nextAttemptAt = Date.now() + delay;
    this.options.log.warn({ mcpServer: this.name, reason, failures: this.failures, retryInMs: delay }, message);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect().catch(() => {}), delay);
    this.retryTimer.unref();
  }

  /** list_changed: fetch the list again; notifications that arrive meanwhile cause one more fetch. */
  private async refresh(generation: number): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    try {
      do {
        this.refreshAgain = false;
        // A notification can arrive between the server's first answer and the end of our connect.
        const connection = this.connection ?? (generation === this.generation ? await this.connecting?.catch(() => undefined) : undefined);
        if (connection === undefined || generation !== this.generation) return;
        try {
          this.tools = await connection.listTools(AbortSignal.timeout(this.options.connectTimeoutMs));
          this.options.log.info({ mcpServer: this.name, tools: this.tools.length }, 'MCP server tool list changed');
          this.options.onToolsChanged();
        } catch (error) {
          this.options.log.warn({ mcpServer: this.name, err: error }, 'MCP server announced new tools but listing them failed; keeping the old list');
        }
      } while (this.refreshAgain);
    } finally {
      this.refreshing = false;
    }
  }
}
