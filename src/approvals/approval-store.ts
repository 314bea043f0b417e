import type { Kysely, Migration } from 'kysely';
import type { Database } from '../db/index.js';
import { storeUnavailable } from '../errors.js';

export type ApprovalStatus = 'pending' | 'approved' | 'denied';

/** One tool call waiting for (or given) a human decision. Its id names exactly one call of one step of one run. */
export interface ApprovalRecord {
  approvalId: string;
  runId: string;
  step: number;
  /** Its call's place among the step's waiting calls: lists keep the model's order. */
  position: number;
  toolCallId: string;
  name: string;
  arguments: string;
  status: ApprovalStatus;
  reason: string | null;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
}

/**
 * A run parked while its approvals wait. `state` is the JSON the run needs to go on anywhere (its
 * input, checkpoint and turn); `events` the run's log so far, so another process can replay it.
 * `host` is the instance that holds the run's live log and resumes it; `hostUntil` its lease on
 * that role, so a dead host's runs are adopted by another instance.
 */
export interface PausedRunRecord {
  runId: string;
  ownerId: string | null;
  sessionId: string | null;
  sessionOwnerId: string | null;
  status: 'waiting' | 'resuming' | 'done';
  step: number;
  state: string;
  events: string;
  host: string | null;
  hostUntil: number;
  createdAt: number;
  updatedAt: number;
}

export type DecideOutcome = 'decided' | 'already_decided' | 'expired' | 'missing';

/**
 * Where approvals live. Every change of state is one conditional write, so two instances (or a
 * decision and the timeout) can race and exactly one wins: deciding updates only a `pending` row
 * that has not expired; resuming claims only a `waiting` run with no pending approval left.
 */
export interface ApprovalStore {
  /** Parks the run with its new approvals (a new step of a run parked before replaces it). */
  park(run: PausedRunRecord, approvals: readonly ApprovalRecord[]): Promise<void>;
  getRun(runId: string): Promise<PausedRunRecord | null>;
  list(runId: string): Promise<ApprovalRecord[]>;
  decide(runId: string, approvalId: string, approved: boolean, reason: string | null, now: number): Promise<DecideOutcome>;
  /** Denies ("timed out") the run's pending approvals that expired by `now`; returns how many. */
  expire(runId: string, now: number): Promise<number>;
  /** `waiting` → `resuming` for `host`, when no approval of the run is pending and the run is ours or its host's lease ran out. */
  claimResume(runId: string, host: string, now: number): Promise<boolean>;
  /** `waiting` → `done` (cancelled), from any host. */
  claimCancel(runId: string): Promise<boolean>;
  /** A claimed resume that could not start goes back to waiting, still ours. */
  unclaim(runId: string, host: string, hostUntil: number): Promise<void>;
  finish(runId: string, now: number): Promise<void>;
  /** Takes over a waiting run whose host's lease ran out (or was let go). */
  adopt(runId: string, host: string, hostUntil: number, now: number): Promise<boolean>;
  /** Extends this host's lease on all its waiting runs. */
  renewHost(host: string, hostUntil: number): Promise<void>;
  /**
   * This host's waiting runs that can go on: first times out what expired (in case a timer's write
   * failed), then returns the runs with no approval pending. Two queries however many runs wait.
   */
  ready(host: string, now: number): Promise<string[]>;
  /** Waiting runs nobody hosts (lease over), for adoption. */
  orphans(now: number, limit: number): Promise<string[]>;
  /** Lets go of this host's waiting runs at shutdown, so another instance (or the next start) adopts them at once. */
  releaseHost(host: string): Promise<void>;
  /** Drops finished runs (and their approvals) older than `before`. */
  sweep(before: number): Promise<void>;
}

interface PausedRunsTable {
  run_id: string;
  owner_id: string | null;
  session_id: string | null;
  session_owner_id: string | null;
  status: string;
  step: number;
  state: string;
  events: string;
  host: string | null;
  host_until: number;
  created_at: number;
  updated_at: number;
}

interface RunApprovalsTable {
  approval_id: string;
  run_id: string;
  step: number;
  position: number;
  tool_call_id: string;
  name: string;
  arguments: string;
  status: string;
  reason: string | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
}

declare module '../db/tables.js' {
  interface Tables {
    paused_runs: PausedRunsTable;
    run_approvals: RunApprovalsTable;
  }
}

export const approvalMigrations: Record<string, Migration> = {
  '2026-12-06a-approvals': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('paused_runs')
        .addColumn('run_id', 'text', (column) => column.primaryKey())
        .addColumn('owner_id', 'text')
        .addColumn('session_id', 'text')
        .addColumn('session_owner_id', 'text')
        .addColumn('status', 'text', (column) => column.notNull())
        .addColumn('step', 'integer', (column) => column.notNull())
        .addColumn('state', 'text', (column) => column.notNull())
        .addColumn('events', 'text', (column) => column.notNull())
        .addColumn('host', 'text')
        .addColumn('host_until', 'double precision', (column) => column.notNull())
        .addColumn('created_at', 'double precision', (column) => column.notNull())
        .addColumn('updated_at', 'double precision', (column) => column.notNull())
        .execute();
      await db.schema.createIndex('paused_runs_status').on('paused_runs').columns(['status', 'host_until']).execute();
      await db.schema
        .createTable('run_approvals')
        .addColumn('approval_id', 'text', (column) => column.primaryKey())
        .addColumn('run_id', 'text', (column) => column.notNull())
        .addColumn('step', 'integer', (column) => column.notNull())
        .addColumn('position', 'integer', (column) => column.notNull())
        .addColumn('tool_call_id', 'text', (column) => column.notNull())
        .addColumn('name', 'text', (column) => column.notNull())
        .addColumn('arguments', 'text', (column) => column.notNull())
        .addColumn('status', 'text', (column) => column.notNull())
        .addColumn('reason', 'text')
        .addColumn('created_at', 'double precision', (column) => column.notNull())
        .addColumn('expires_at', 'double precision', (column) => column.notNull())
        .addColumn('decided_at', 'double precision')
        .execute();
      await db.schema.createIndex('run_approvals_run').on('run_approvals').columns(['run_id', 'status']).execute();
    },
  },
};

async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw storeUnavailable(error);
  }
}

const changed = (result: { numUpdatedRows: bigint }) => result.numUpdatedRows > 0n;

/** Approvals in the database (SQLite or PostgreSQL): durable, shared by every instance. */
export class DatabaseApprovalStore implements ApprovalStore {
  private readonly db: Database['db'];

  constructor(database: Database) {
    this.db = database.db;
  }

  park(run: PausedRunRecord, approvals: readonly ApprovalRecord[]): Promise<void> {
    return guard(() =>
      this.db.transaction().execute(async (trx) => {
        const row = runRow(run);
        await trx
          .insertInto('paused_runs')
          .values(row)
          .onConflict((conflict) => conflict.column('run_id').doUpdateSet({ status: row.status, step: row.step, state: row.state, events: row.events, host: row.host, host_until: row.host_until, updated_at: row.updated_at }))
          .execute();
        if (approvals.length > 0) await trx.insertInto('run_approvals').values(approvals.map(approvalRow)).execute();
      }),
    );
  }

  getRun(runId: string): Promise<PausedRunRecord | null> {
    return guard(async () => {
      const row = await this.db.selectFrom('paused_runs').selectAll().where('run_id', '=', runId).executeTakeFirst();
      return row === undefined ? null : toRun(row);
    });
  }

  list(runId: string): Promise<ApprovalRecord[]> {
    return guard(async () => {
      const rows = await this.db.selectFrom('run_approvals').selectAll().where('run_id', '=', runId).orderBy('step').orderBy('position').execute();
      return rows.map(toApproval);
    });
  }

  decide(runId: string, approvalId: string, approved: boolean, reason: string | null, now: number): Promise<DecideOutcome> {
    return guard(async () => {
      // The single arbiter: only a pending, unexpired row changes, so of two decisions (or a
      // decision and the timeout) exactly one takes effect.
      const result = await this.db
        .updateTable('run_approvals')
        .set({ status: approved ? 'approved' : 'denied', reason, decided_at: now })
        .where('approval_id', '=', approvalId)
        .where('run_id', '=', runId)
        .where('status', '=', 'pending')
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (changed(result)) return 'decided';
      const row = await this.db.selectFrom('run_approvals').select(['status']).where('approval_id', '=', approvalId).where('run_id', '=', runId).executeTakeFirst();
      if (row === undefined) return 'missing';
      return row.status === 'pending' ? 'expired' : 'already_decided';
    });
  }

  expire(runId: string, now: number): Promise<number> {
    return guard(async () => {
      const result = await this.db
        .updateTable('run_approvals')
        .set({ status: 'denied', reason: 'timed out', decided_at: now })
        .where('run_id', '=', runId)
        .where('status', '=', 'pending')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }

  claimResume(runId: string, host: string, now: number): Promise<boolean> {
    return guard(async () => {
      const result = await this.db
        .updateTable('paused_runs')
        .set({ status: 'resuming', host, updated_at: now })
        .where('run_id', '=', runId)
        .where('status', '=', 'waiting')
        .where((eb) => eb.or([eb('host', '=', host), eb('host', 'is', null), eb('host_until', '<', now)]))
        .where((eb) =>
          eb.not(eb.exists(eb.selectFrom('run_approvals').select('approval_id').where('run_approvals.run_id', '=', runId).where('run_approvals.status', '=', 'pending'))),
        )
        .executeTakeFirst();
      return changed(result);
    });
  }

  claimCancel(runId: string): Promise<boolean> {
    return guard(async () => {
      const now = Date.now();
      const result = await this.db.updateTable('paused_runs').set({ status: 'done', updated_at: now }).where('run_id', '=', runId).where('status', '=', 'waiting').executeTakeFirst();
      if (!changed(result)) return false;
      // Nothing can be decided for a cancelled run any more.
      await this.db.updateTable('run_approvals').set({ status: 'denied', reason: 'cancelled', decided_at: now }).where('run_id', '=', runId).where('status', '=', 'pending').execute();
      return true;
    });
  }

  unclaim(runId: string, host: string, hostUntil: number): Promise<void> {
    return guard(async () => {
      await this.db.updateTable('paused_runs').set({ status: 'waiting', host_until: hostUntil }).where('run_id', '=', runId).where('status', '=', 'resuming').where('host', '=', host).execute();
    });
  }

  finish(runId: string, now: number): Promise<void> {
    return guard(async () => {
      // The state and events were only needed to go on: drop them, keep the row for the approvals' audit.
      await this.db.updateTable('paused_runs').set({ status: 'done', state: '{}', events: '[]', updated_at: now }).where('run_id', '=', runId).execute();
    });
  }

  adopt(runId: string, host: string, hostUntil: number, now: number): Promise<boolean> {
    return guard(async () => {
      const result = await this.db
        .updateTable('paused_runs')
        .set({ host, host_until: hostUntil })
        .where('run_id', '=', runId)
        .where('status', '=', 'waiting')
        .where((eb) => eb.or([eb('host', 'is', null), eb('host_until', '<', now)]))
        .executeTakeFirst();
      return changed(result);
    });
  }

  renewHost(host: string, hostUntil: number): Promise<void> {
    return guard(async () => {
      await this.db.updateTable('paused_runs').set({ host_until: hostUntil }).where('host', '=', host).where('status', '=', 'waiting').execute();
    });
  }

  ready(host: string, now: number): Promise<string[]> {
    return guard(async () => {
      const mine = this.db.selectFrom('paused_runs').select('run_id').where('host', '=', host).where('status', '=', 'waiting');
      await this.db
        .updateTable('run_approvals')
        .set({ status: 'denied', reason: 'timed out', decided_at: now })
        .where('status', '=', 'pending')
        .where('expires_at', '<=', now)
        .where('run_id', 'in', mine)
        .execute();
      const rows = await mine
        .where((eb) => eb.not(eb.exists(eb.selectFrom('run_approvals').select('approval_id').whereRef('run_approvals.run_id', '=', 'paused_runs.run_id').where('run_approvals.status', '=', 'pending'))))
        .execute();
      return rows.map((row) => row.run_id);
    });
  }

  orphans(now: number, limit: number): Promise<string[]> {
    return guard(async () => {
      const rows = await this.db.selectFrom('paused_runs').select('run_id').where('status', '=', 'waiting').where('host_until', '<', now).limit(limit).execute();
      return rows.map((row) => row.run_id);
    });
  }

  releaseHost(host: string): Promise<void> {
    return guard(async () => {
      await this.db.updateTable('paused_runs').set({ host: null, host_until: 0 }).where('host', '=', host).where('status', '=', 'waiting').execute();
    });
  }

  sweep(before: number): Promise<void> {
    return guard(async () => {
      const old = this.db.selectFrom('paused_runs').select('run_id').where('status', '=', 'done').where('updated_at', '<', before);
      await this.db.deleteFrom('run_approvals').where('run_id', 'in', old).execute();
      await this.db.deleteFrom('paused_runs').where('status', '=', 'done').where('updated_at', '<', before).execute();
    });
  }
}

/**
 * Approvals in memory, for a single instance without a database (ENABLE_PERSISTENCE=false): the
 * same rules, but a waiting run does not survive a restart. Every method runs without an await
 * between its check and its change, so the same races have the same single winner.
 */
export class MemoryApprovalStore implements ApprovalStore {
  private readonly runs = new Map<string, PausedRunRecord>();
  private readonly approvals = new Map<string, ApprovalRecord>();

  async park(run: PausedRunRecord, approvals: readonly ApprovalRecord[]): Promise<void> {
    this.runs.set(run.runId, { ...run });
    for (const approval of approvals) this.approvals.set(approval.approvalId, { ...approval });
  }

  async getRun(runId: string): Promise<PausedRunRecord | null> {
    const run = this.runs.get(runId);
    return run === undefined ? null : { ...run };
  }

  async list(runId: string): Promise<ApprovalRecord[]> {
    return [...this.approvals.values()]
      .filter((approval) => approval.runId === runId)
      .sort((a, b) => a.step - b.step || a.position - b.position)
      .map((approval) => ({ ...approval }));
  }

  async decide(runId: string, approvalId: string, approved: boolean, reason: string | null, now: number): Promise<DecideOutcome> {
    const approval = this.approvals.get(approvalId);
    if (approval === undefined || approval.runId !== runId) return 'missing';
    if (approval.status !== 'pending') return 'already_decided';
    if (approval.expiresAt <= now) return 'expired';
    Object.assign(approval, { status: approved ? 'approved' : 'denied', reason, decidedAt: now });
    return 'decided';
  }

  async expire(runId: string, now: number): Promise<number> {
    let count = 0;
    for (const approval of this.approvals.values()) {
      if (approval.runId !== runId || approval.status !== 'pending' || approval.expiresAt > now) continue;
      Object.assign(approval, { status: 'denied', reason: 'timed out', decidedAt: now });
      count++;
    }
    return count;
  }

  async claimResume(runId: string, host: string, now: number): Promise<boolean> {
    const run = this.runs.get(runId);
    if (run === undefined || run.status !== 'waiting') return false;
    for (const approval of this.approvals.values()) if (approval.runId === runId && approval.status === 'pending') return false;
    Object.assign(run, { status: 'resuming', host, updatedAt: now });
    return true;
  }

  async claimCancel(runId: string): Promise<boolean> {
    const run = this.runs.get(runId);
    if (run === undefined || run.status !== 'waiting') return false;
    const now = Date.now();
    Object.assign(run, { status: 'done', updatedAt: now });
    for (const approval of this.approvals.values()) {
      if (approval.runId === runId && approval.status === 'pending') Object.assign(approval, { status: 'denied', reason: 'cancelled', decidedAt: now });
    }
    return true;
  }

  async unclaim(runId: string): Promise<void> {
    const run = this.runs.get(runId);
    if (run?.status === 'resuming') run.status = 'waiting';
  }

  async finish(runId: string, now: number): Promise<void> {
    const run = this.runs.get(runId);
    if (run !== undefined) Object.assign(run, { status: 'done', state: '{}', events: '[]', updatedAt: now });
  }

  async adopt(): Promise<boolean> {
    return false;
  }

  async ready(): Promise<string[]> {
    // One instance: its timers and decisions wake its runs directly.
    return [];
  }

  async renewHost(): Promise<void> {}

  async orphans(): Promise<string[]> {
    return [];
  }

  async releaseHost(): Promise<void> {}

  async sweep(before: number): Promise<void> {
    for (const [runId, run] of this.runs) {
      if (run.status !== 'done' || run.updatedAt >= before) continue;
      this.runs.delete(runId);
      for (const [approvalId, approval] of this.approvals) if (approval.runId === runId) this.approvals.delete(approvalId);
    }
  }
}

function runRow(run: PausedRunRecord): PausedRunsTable {
  return {
    run_id: run.runId,
    owner_id: run.ownerId,
    session_id: run.sessionId,
    session_owner_id: run.sessionOwnerId,
    status: run.status,
    step: run.step,
    state: run.state,
    events: run.events,
    host: run.host,
    host_until: run.hostUntil,
    created_at: run.createdAt,
    updated_at: run.updatedAt,
  };
}

function toRun(row: PausedRunsTable): PausedRunRecord {
  return {
    runId: row.run_id,
    ownerId: row.owner_id,
    sessionId: row.session_id,
    sessionOwnerId: row.session_owner_id,
    status: row.status as PausedRunRecord['status'],
    step: Number(row.step),
    state: row.state,
    events: row.events,
    host: row.host,
    hostUntil: Number(row.host_until),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function approvalRow(approval: ApprovalRecord): RunApprovalsTable {
  return {
    approval_id: approval.approvalId,
    run_id: approval.runId,
    step: approval.step,
    position: approval.position,
    tool_call_id: approval.toolCallId,
    name: approval.name,
    arguments: approval.arguments,
    status: approval.status,
    reason: approval.reason,
    created_at: approval.createdAt,
    expires_at: approval.expiresAt,
    decided_at: approval.decidedAt,
  };
}

function toApproval(row: RunApprovalsTable): ApprovalRecord {
  return {
    approvalId: row.approval_id,
    runId: row.run_id,
    step: Number(row.step),
    position: Number(row.position),
    toolCallId: row.tool_call_id,
    name: row.name,
    arguments: row.arguments,
    status: row.status as ApprovalStatus,
    reason: row.reason,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    decidedAt: row.decided_at === null ? null : Number(row.decided_at),
  };
}
