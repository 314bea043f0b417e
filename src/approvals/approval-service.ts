import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { cancelledError, clientSideTurn, driveRun, Run, type AgentDeps, type AgentRunInput, type Checkpoint, type Decision, type PausedTurn, type RunOutcome, type RunTracker, type SessionTurns, type Turn } from '../agent/index.js';
import { ChassisError, forbidden, notFound } from '../errors.js';
import { randomId } from '../random-id.js';
import type { ChatMessage } from '../model/types.js';
import type { ResponseFormats } from '../agents/resolve.js';
import type { Observability, RunFacts, TraceCarrier } from '../observability/index.js';
import type { Principal } from '../principal.js';
import type { RedisConnection } from '../redis/index.js';
import type { RunEvent, RunInfo, RunLog, RunRegistry } from '../runs/index.js';
import type { ApprovalRecord, ApprovalStore, PausedRunRecord } from './approval-store.js';

/** How long an instance holds the runs it hosts without renewing; a crashed host's runs are adopted after this. */
const HOST_LEASE_MS = 30_000;
/** How often an instance with a database renews its hosting, adopts orphans and looks for decisions made elsewhere. */
const TICK_MS = 5_000;
/** A run that could not resume (instance busy) tries again after this. */
const RETRY_MS = 1_000;
/** Finished approval records are kept this long (GET …/approvals after the run), then swept. */
const KEEP_DONE_MS = 86_400_000;

export interface ApprovalServiceOptions {
  store: ApprovalStore;
  /** True with a database: runs are hosted with a lease, adopted after a restart or a crash. */
  durable: boolean;
  timeoutSeconds: number;
  registry: RunRegistry;
  runs: RunTracker;
  agent: AgentDeps;
  sessions?: SessionTurns;
  /** Compiles a parked run's response_format again when it resumes. */
  responseFormats: ResponseFormats;
  redis?: RedisConnection;
  runDeadlineSeconds: number;
  log: FastifyBaseLogger;
  /** Metrics and traces: each resumed segment is observed as launchRun observes a run's start. */
  observability?: Pick<Observability, 'run' | 'carrier'>;
}

/** What a run stores to go on anywhere: plain JSON. */
interface ParkedState {
  info: RunInfo;
  input: {
    context: ChatMessage[];
    model: string;
    temperature?: number;
    maxTokens?: number;
    allowedTools: string[];
    stream: boolean;
    approvalRequired?: readonly string[] | 'all';
    /** The run's step limit (its agent's max_steps, or MAX_AGENT_STEPS); absent in states parked before it was stored. */
    maxSteps?: number;
    /** The agent the run started with: its name and response_format as they were then (see RunSettings). */
    agent?: string;
    responseFormat?: Record<string, unknown>;
  };
  checkpoint: Checkpoint;
  turn: PausedTurn | null;
  /** Where the run's spans hang (tracing was on when it paused), so its resumed segments join that trace. */
  trace?: TraceCarrier;
}

/** A waiting (or resumed) run whose live log is on this instance. */
interface Hosted {
  log: RunLog;
  /** Approvals whose `approval_decided` event is in the log. */
  logged: Set<string>;
  timer: NodeJS.Timeout | null;
  /** The resumed run while it runs here. */
  run: Run | null;
  refreshing: Promise<void> | null;
}

/**
 * What a run was started with beyond its AgentRunInput, stored so that a resumed run behaves
 * exactly as the original: the step limit, and the agent's response_format as a JSON Schema (the
 * input only holds the compiled check, a function). A resumed run keeps these even if the agent
 * file changed or was deleted while it waited: a run ends under the rules it started with; the
 * next turn uses the agent as it is then.
 */
export interface RunSettings {
  maxSteps: number;
  agent?: { name: string; responseFormat?: Record<string, unknown> };
}

export interface PendingApproval {
  approval_id: string;
  tool_call_id: string;
  name: string;
  arguments: string;
  expires_at: string;
}

const newApprovalId = () => `apr_${randomId()}`;
const iso = (ms: number) => new Date(ms).toISOString();

function approvalView(approval: ApprovalRecord) {
  return {
    approval_id: approval.approvalId,
    run_id: approval.runId,
    tool_call_id: approval.toolCallId,
    name: approval.name,
    arguments: approval.arguments,
    status: approval.status,
    reason: approval.reason,
    created_at: iso(approval.createdAt),
    expires_at: iso(approval.expiresAt),
    decided_at: approval.decidedAt === null ? null : iso(approval.decidedAt),
  };
}

const pendingView = (approval: ApprovalRecord): PendingApproval => ({
  approval_id: approval.approvalId,
  tool_call_id: approval.toolCallId,
  name: approval.name,
  arguments: approval.arguments,
  expires_at: iso(approval.expiresAt),
});

/**
 * Human approval of tool calls. A run that stops for approvals is parked as data (ApprovalStore),
 * not as a sleeping promise: its instance keeps its live log and a timer for the timeout, but any
 * instance can record a decision, and the run goes on from its checkpoint wherever it is hosted
 * (adopted by another instance, or by the next start, when its host is gone). Every transition is
 * a conditional write in the store, so no decision can be applied twice or to another call.
 */
export class ApprovalService {
  readonly instanceId = `inst_${randomId()}`;
  private readonly hosted = new Map<string, Hosted>();
  private readonly ticker: NodeJS.Timeout;
  private readonly subscriber: Redis | null = null;
  private readonly wakeChannel: string;
  private closed = false;
  private lastSweep = 0;

  constructor(private readonly options: ApprovalServiceOptions) {
    const { redis, durable } = options;
    this.wakeChannel = `${redis?.prefix ?? ''}approvals:wake`;
    if (redis !== undefined && durable) {
      this.subscriber = redis.client.duplicate({ enableOfflineQueue: true, commandTimeout: undefined });
      this.subscriber.on('error', () => undefined);
      this.subscriber.subscribe(this.wakeChannel).catch(() => undefined);
      this.subscriber.on('message', (_channel: string, runId: string) => {
        if (this.hosted.has(runId)) this.refresh(runId);
      });
    }
    // With a database: hosting, adoption, decisions from instances without Redis. In memory: sweeping only.
    this.ticker = setInterval(() => void this.tick(), durable ? TICK_MS : 60_000);
    this.ticker.unref();
  }

  /** At start: take up the runs left waiting by a previous process (or a crashed instance). */
  async start(): Promise<void> {
    if (this.options.durable) await this.tick();
  }

  /** Lets go of hosted runs, so another instance or the next start takes them up at once. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.ticker);
    for (const hosted of this.hosted.values()) {
      if (hosted.timer !== null) clearTimeout(hosted.timer);
      // Its followers reconnect (Last-Event-ID) to whichever instance takes the run up; they must not hold the close.
      if (hosted.run === null) hosted.log.detach();
    }
    this.subscriber?.disconnect();
    if (this.options.durable) await this.options.store.releaseHost(this.instanceId).catch((error: unknown) => this.options.log.warn({ err: error }, 'could not let go of waiting runs'));
  }

  /**
   * What `driveRun` calls when the loop stops for approvals: records the run and its approvals
   * (before any client can hear of them), logs `approval_required` for each, keeps the session busy.
   */
  pauser(log: RunLog, input: AgentRunInput, turn: Turn, settings: RunSettings): (checkpoint: Checkpoint) => Promise<Array<Record<string, unknown>>> {
    return async (checkpoint) => {
      const { store, timeoutSeconds } = this.options;
      const runId = log.info.runId;
      const now = Date.now();
      const expiresAt = now + timeoutSeconds * 1000;
      const approvals: ApprovalRecord[] = checkpoint.pending.map((call, position) => ({
        approvalId: newApprovalId(),
        runId,
        step: checkpoint.step,
        position,
        toolCallId: call.id,
        name: call.function.name,
        arguments: call.function.arguments,
        status: 'pending',
        reason: null,
        createdAt: now,
        expiresAt,
        decidedAt: null,
      }));
      const required: RunEvent[] = approvals.map((approval) => ({ type: 'approval_required', run_id: runId, ...pendingView(approval) }));
      const pausedTurn = turn.pause === undefined ? null : await turn.pause(expiresAt);
      const state: ParkedState = {
        info: log.info,
        input: {
          context: [...input.context],
          model: input.model,
          temperature: input.temperature,
          maxTokens: input.maxTokens,
          allowedTools: [...input.tools.allowed],
          stream: input.stream,
          approvalRequired: input.approvalRequired,
          maxSteps: settings.maxSteps,
          ...(settings.agent === undefined ? {} : { agent: settings.agent.name }),
          ...(settings.agent?.responseFormat === undefined ? {} : { responseFormat: settings.agent.responseFormat }),
        },
        checkpoint,
        turn: pausedTurn,
      };
      const carrier = this.options.observability?.carrier();
      if (carrier !== undefined) state.trace = carrier;
      const record: PausedRunRecord = {
        runId,
        ownerId: log.info.ownerId,
        sessionId: log.info.sessionId,
        sessionOwnerId: pausedTurn?.sessionOwnerId ?? null,
        status: 'waiting',
        step: checkpoint.step,
        state: JSON.stringify(state),
        events: JSON.stringify([...log.events, ...required]),
        host: this.instanceId,
        hostUntil: now + HOST_LEASE_MS,
        createdAt: log.info.createdAt,
        updatedAt: now,
      };
      // Hosted before the record exists, so a decision that lands at once finds the run here.
      const hosted = this.host(log);
      hosted.run = null;
      try {
        await store.park(record, approvals);
      } catch (error) {
        this.unhost(runId);
        throw error;
      }
      for (const event of required) log.append(event);
      this.arm(runId, hosted, expiresAt);
      return approvals.map(pendingView) as unknown as Array<Record<string, unknown>>;
    };
  }

  /** The registry's cancel for a run this instance knows: true when it handled it. */
  cancel(runId: string): boolean {
    const hosted = this.hosted.get(runId);
    if (hosted === undefined) return false;
    if (hosted.run !== null) hosted.run.abort(cancelledError());
    else void this.cancelWaiting(runId, hosted);
    return true;
  }

  async decide(principal: Principal, runId: string, approvalId: string, approve: boolean, reason: string | null) {
    const { store } = this.options;
    const run = await store.getRun(runId);
    if (run === null) throw notFound(`Run ${runId} has no approvals`);
    this.checkAccess(principal, run);
    const outcome = await store.decide(runId, approvalId, approve, reason, Date.now());
    if (outcome === 'missing') throw notFound(`Approval ${approvalId} not found in run ${runId}`);
    if (outcome === 'expired') {
      await store.expire(runId, Date.now());
      this.wake(runId);
      throw new ChassisError(409, 'APPROVAL_ALREADY_DECIDED', `Approval ${approvalId} timed out and counts as denied`);
    }
    if (outcome === 'already_decided') {
      const current = (await store.list(runId)).find((approval) => approval.approvalId === approvalId);
      throw new ChassisError(409, 'APPROVAL_ALREADY_DECIDED', `Approval ${approvalId} was already decided (${current?.status ?? 'decided'}${current?.reason ? `: ${current.reason}` : ''})`);
    }
    this.wake(runId);
    return { approval_id: approvalId, decision: approve ? ('approve' as const) : ('deny' as const) };
  }

  async list(principal: Principal, runId: string) {
    const run = await this.options.store.getRun(runId);
    if (run === null) throw notFound(`Run ${runId} has no approvals`);
    this.checkAccess(principal, run);
    return (await this.options.store.list(runId)).map(approvalView);
  }

  /** For GET /runs/{id}: the pending approvals when the run waits, else null. */
  async waiting(runId: string): Promise<PendingApproval[] | null> {
    const run = await this.options.store.getRun(runId);
    if (run === null || run.status !== 'waiting') return null;
    return (await this.options.store.list(runId)).filter((approval) => approval.status === 'pending' && approval.step === run.step).map(pendingView);
  }

  /** A waiting run nobody here hosts (no Redis to show it): its recorded events, not followed live. */
  async recorded(runId: string): Promise<{ info: RunInfo; events: RunEvent[] } | null> {
    const run = await this.options.store.getRun(runId);
    if (run === null || run.status !== 'waiting') return null;
    const state = JSON.parse(run.state) as ParkedState;
    return { info: state.info, events: JSON.parse(run.events) as RunEvent[] };
  }

  /** Only the run's owner, or its session's owner, may decide; with auth off (open mode) anyone may. */
  private checkAccess(principal: Principal, run: PausedRunRecord): void {
    if (principal.via === 'open') return;
    // The run's owner exactly as GET /runs checks it (an API key without X-User-ID owns its anonymous runs).
    if (principal.userId === run.ownerId) return;
    if (principal.userId !== null && principal.userId === run.sessionOwnerId) return;
    throw forbidden('Only the owner of this run or of its session may see and decide its approvals');
  }

  /** A decision was recorded: the host logs it and goes on once the step is fully decided. */
  private wake(runId: string): void {
    if (this.hosted.has(runId)) {
      this.refresh(runId);
      return;
    }
    // Hosted elsewhere: wake that instance; if its host is gone, the claim below takes the run over.
    if (this.subscriber !== null) this.options.redis!.client.publish(this.wakeChannel, runId).catch(() => undefined);
    void this.resume(runId).catch((error: unknown) => this.options.log.warn({ err: error, runId }, 'could not resume a run'));
  }

  private host(log: RunLog): Hosted {
    let hosted = this.hosted.get(log.info.runId);
    if (hosted === undefined) {
      hosted = { log, logged: new Set(), timer: null, run: null, refreshing: null };
      this.hosted.set(log.info.runId, hosted);
    }
    return hosted;
  }

  private unhost(runId: string): void {
    const hosted = this.hosted.get(runId);
    if (hosted?.timer) clearTimeout(hosted.timer);
    this.hosted.delete(runId);
  }

  /** The timeout: undecided calls count as denied ("timed out"), then the run goes on. */
  private arm(runId: string, hosted: Hosted, expiresAt: number): void {
    if (hosted.timer !== null) clearTimeout(hosted.timer);
    hosted.timer = setTimeout(() => {
      hosted.timer = null;
      void this.options.store
        .expire(runId, Date.now())
        .then(() => this.refresh(runId))
        .catch((error: unknown) => this.options.log.warn({ err: error, runId }, 'could not expire approvals; retrying at the next tick'));
    }, Math.max(0, expiresAt - Date.now()) + 5);
    hosted.timer.unref();
  }

  /** Logs decisions not logged yet and resumes when none is pending. One at a time per run. */
  private refresh(runId: string): void {
    const hosted = this.hosted.get(runId);
    if (hosted === undefined) return;
    if (hosted.refreshing !== null) {
      // Run again after the current one: a decision may have landed after it read the approvals.
      void hosted.refreshing.then(() => this.refresh(runId));
      return;
    }
    hosted.refreshing = this.logDecisions(runId, hosted)
      .then(() => this.resume(runId))
      .catch((error: unknown) => this.options.log.warn({ err: error, runId }, 'could not resume a run'))
      .finally(() => {
        hosted.refreshing = null;
      });
  }

  /** Logs the decisions not logged yet; returns the run's approvals as read. */
  private async logDecisions(runId: string, hosted: Hosted): Promise<ApprovalRecord[]> {
    const approvals = await this.options.store.list(runId);
    for (const approval of approvals) {
      if (approval.status === 'pending' || hosted.logged.has(approval.approvalId)) continue;
      hosted.logged.add(approval.approvalId);
      hosted.log.append({
        type: 'approval_decided',
        run_id: runId,
        approval_id: approval.approvalId,
        tool_call_id: approval.toolCallId,
        name: approval.name,
        decision: approval.status === 'approved' ? 'approve' : 'deny',
        reason: approval.reason,
      });
    }
    return approvals;
  }

  /** Claims the run (only one instance, only once every approval of the step is decided) and runs it on from its checkpoint. */
  private async resume(runId: string): Promise<void> {
    const { store, runs, log: logger } = this.options;
    if (this.closed) return;
    if (!(await store.claimResume(runId, this.instanceId, Date.now()))) return;
    let run: Run;
    let hosted: Hosted;
    let state: ParkedState;
    let approvals: ApprovalRecord[];
    try {
      const record = (await store.getRun(runId))!;
      state = JSON.parse(record.state) as ParkedState;
      hosted = this.hosted.get(runId) ?? this.adoptLog(record, state);
      approvals = await this.logDecisions(runId, hosted);
      run = runs.start(runId);
    } catch (error) {
      // Busy, shutting down or the store blinked: the run stays waiting (and ours); the next tick tries again.
      await store.unclaim(runId, this.instanceId, Date.now() + HOST_LEASE_MS).catch(() => undefined);
      logger.warn({ err: error, runId }, 'could not resume a run yet');
      if (!this.closed) setTimeout(() => this.refresh(runId), RETRY_MS).unref();
      return;
    }
    hosted.run = run;
    if (hosted.timer !== null) clearTimeout(hosted.timer);
    hosted.timer = null;
    const decisions = new Map<string, Decision>();
    for (const approval of approvals) {
      if (approval.step === state.checkpoint.step) decisions.set(approval.toolCallId, { approved: approval.status === 'approved', reason: approval.reason });
    }
    await this.drive(run, hosted, state, decisions);
  }

  /**
   * Runs the loop on from the checkpoint in the run's log; a run cancelled while waiting comes here
   * with its signal aborted. Observed as one segment of the run (metrics, its `invoke_agent` span).
   */
  private async drive(run: Run, hosted: Hosted, state: ParkedState, decisions: Map<string, Decision>): Promise<void> {
    const { store, observability, log: logger } = this.options;
    const runId = run.id;
    const facts: RunFacts = {
      runId,
      sessionId: state.info.sessionId,
      model: state.input.model,
      agent: state.input.agent ?? null,
      stream: state.input.stream,
      resumed: { usage: state.checkpoint.usage, ...(state.trace === undefined ? {} : { trace: state.trace }) },
    };
    const segment = () => this.segment(run, hosted, state, decisions);
    const outcome = observability === undefined ? await segment() : await observability.run(null, facts, segment);
    if (outcome.status !== 'waiting') {
      await store.finish(runId, Date.now()).catch((error: unknown) => logger.warn({ err: error, runId }, 'could not mark a resumed run finished'));
      this.unhost(runId);
    }
  }

  private async segment(run: Run, hosted: Hosted, state: ParkedState, decisions: Map<string, Decision>): Promise<RunOutcome> {
    const { sessions, agent, log: logger } = this.options;
    const runId = run.id;
    let turn: Turn;
    try {
      turn = state.turn === null ? clientSideTurn([]) : await sessions!.resume(state.turn);
    } catch (error) {
      const failure = error instanceof ChassisError ? error : new ChassisError(500, 'INTERNAL_ERROR', 'Internal server error', { cause: error });
      run.end();
      hosted.log.append({ type: 'error', run_id: runId, session_id: state.info.sessionId, detail: failure.detail, code: failure.code });
      hosted.log.finish({ status: 'failed', stopReason: null, usage: state.checkpoint.usage, error: { detail: failure.detail, code: failure.code, status: failure.status } });
      return { status: 'failed', content: '', toolCalls: [], usage: state.checkpoint.usage, stopReason: null, error: failure };
    }
    const parked = state.input;
    const settings: RunSettings = {
      maxSteps: parked.maxSteps ?? agent.maxSteps,
      ...(parked.agent === undefined ? {} : { agent: { name: parked.agent, ...(parked.responseFormat === undefined ? {} : { responseFormat: parked.responseFormat }) } }),
    };
    const input: AgentRunInput = {
      context: parked.context,
      model: parked.model,
      temperature: parked.temperature,
      maxTokens: parked.maxTokens,
      tools: agent.tools.select(parked.allowedTools.filter((name) => agent.tools.resolve(name) !== undefined)),
      stream: parked.stream,
      signal: run.signal,
      approvalRequired: parked.approvalRequired,
      ...(parked.responseFormat === undefined ? {} : { responseFormat: this.options.responseFormats.checkForSchema(parked.responseFormat) }),
    };
    return driveRun({
      run,
      turn,
      log: hosted.log,
      input,
      deps: { ...agent, maxSteps: settings.maxSteps },
      warn: (error, message) => logger.warn({ err: error, runId }, message),
      resume: { checkpoint: state.checkpoint, decisions },
      onPause: this.pauser(hosted.log, input, turn, settings),
    });
  }

  private async cancelWaiting(runId: string, hosted: Hosted): Promise<void> {
    const { store, log: logger } = this.options;
    try {
      if (!(await store.claimCancel(runId))) {
        // Resuming right now: cancel the resumed run as soon as it exists.
        if (hosted.run !== null) hosted.run.abort(cancelledError());
        return;
      }
      const record = (await store.getRun(runId))!;
      const state = JSON.parse(record.state) as ParkedState;
      if (hosted.timer !== null) clearTimeout(hosted.timer);
      hosted.timer = null;
      // Ends through the loop like any cancelled run: the completed messages are saved, the paused step is not.
      const run = new Run(runId, this.options.runDeadlineSeconds, () => undefined);
      run.abort(cancelledError());
      hosted.run = run;
      await this.drive(run, hosted, state, new Map());
    } catch (error) {
      logger.warn({ err: error, runId }, 'could not cancel a waiting run');
    }
  }

  /** Rebuilds the live log of a run parked by another process and hosts it here. */
  private adoptLog(record: PausedRunRecord, state: ParkedState): Hosted {
    const events = JSON.parse(record.events) as RunEvent[];
    const log = this.options.registry.adopt(state.info, events, () => {
      this.cancel(record.runId);
    });
    const hosted = this.host(log);
    for (const event of events) if (event.type === 'approval_decided') hosted.logged.add(String(event.approval_id));
    return hosted;
  }

  /** Renews this instance's hosting, adopts runs whose host is gone, and catches up with decisions made elsewhere and timeouts. */
  private async tick(): Promise<void> {
    if (this.closed) return;
    const { store, log: logger } = this.options;
    const now = Date.now();
    try {
      if (!this.options.durable) {
        // Memory: only forget finished runs' approvals.
        await store.sweep(now - KEEP_DONE_MS);
        return;
      }
      if (this.hosted.size > 0) await store.renewHost(this.instanceId, now + HOST_LEASE_MS);
      for (const runId of await store.orphans(now, 100)) {
        if (!(await store.adopt(runId, this.instanceId, now + HOST_LEASE_MS, now))) continue;
        const record = await store.getRun(runId);
        if (record === null || record.status !== 'waiting') continue;
        const state = JSON.parse(record.state) as ParkedState;
        const hosted = this.hosted.get(runId) ?? this.adoptLog(record, state);
        const pending = (await store.list(runId)).filter((approval) => approval.status === 'pending');
        if (pending.length > 0) this.arm(runId, hosted, Math.min(...pending.map((approval) => approval.expiresAt)));
      }
      if (this.hosted.size > 0) for (const runId of await store.ready(this.instanceId, now)) this.refresh(runId);
      if (now - this.lastSweep > 3_600_000) {
        this.lastSweep = now;
        await store.sweep(now - KEEP_DONE_MS);
      }
    } catch (error) {
      logger.warn({ err: error }, 'approvals upkeep failed');
    }
  }
}
