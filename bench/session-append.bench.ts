// Cost of committing one turn (user message + answer) to a session that already holds 10 or 1,000
// messages, on SQLite and PostgreSQL, through the session store (no model call, no HTTP).
// Target: the 1,000-message append costs at most 1.5× the 10-message one (an append must not
// rewrite history). Also reported: the whole store work of a turn (lease + history tail + commit).
//
//   npx tsx bench/session-append.bench.ts            (PostgreSQL from TEST_PG_URL, default the local `test` db)
//
// Writes bench/results/session-append-<YYYY-MM-DD>.json and stops by itself.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import SQLite from 'better-sqlite3';
import type { FastifyBaseLogger } from 'fastify';
import { migrate, openDatabase, type Database } from '../src/db/index.js';
import type { ChatMessage } from '../src/model/types.js';
import { SessionStore, sessionMigrations } from '../src/sessions/index.js';
import { postgresSchema } from './postgres-schema.js';

const SIZES = [10, 1000];
const WARMUP = 50;
const ITERATIONS = 500;
const HISTORY_SENT = 100; // SESSION_MAX_MESSAGES default: what a turn reads back

const silent = { level: 'silent', fatal() {}, error() {}, warn() {}, info() {}, debug() {}, trace() {}, child: () => silent } as unknown as FastifyBaseLogger;

const text = (length: number) => 'lorem ipsum dolor sit amet '.repeat(Math.ceil(length / 27)).slice(0, length);
const user: ChatMessage = { role: 'user', content: text(200) };
const answer: ChatMessage = { role: 'assistant', content: text(600) };
const history = (count: number): ChatMessage[] => Array.from({ length: count }, (_, i) => (i % 2 === 0 ? user : answer));

interface Stats {
  median_ms: number;
  p99_ms: number;
  mean_ms: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return { median_ms: round(at(0.5)), p99_ms: round(at(0.99)), mean_ms: round(sorted.reduce((a, b) => a + b, 0) / sorted.length) };
}

/**
 * One session per size, each held at exactly its size: every measured append is undone (untimed)
 * before the next. The sizes take turns within each iteration, so warm-up and background noise on
 * the machine fall on both alike.
 */
async function measure(database: Database): Promise<Record<number, { commit: Stats; turn: Stats }>> {
  const store = new SessionStore(database);
  const sessions = await Promise.all(
    SIZES.map(async (size) => {
      const id = `bench-${size}-${randomBytes(6).toString('hex')}`;
      await store.create({ id, ownerId: 'bench', systemPrompt: 'You are a benchmark.', model: 'm', metadata: { k: 'v' } }, history(size));
      return { id, size, commit: [] as number[], turn: [] as number[] };
    }),
  );
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    const order = i % 2 === 0 ? sessions : [...sessions].reverse();
    for (const session of order) {
      const owner = `run-${i}`;
      const turnStart = performance.now();
      const lease = await store.acquire(session.id, owner, 60_000);
      if (lease.status !== 'held') throw new Error(`lease ${lease.status}`);
      await store.tail(session.id, HISTORY_SENT);
      const commitStart = performance.now();
      const outcome = await store.append(session.id, owner, [user, answer], {});
      const end = performance.now();
      if (outcome.status !== 'appended') throw new Error(`append ${outcome.status}`);
      if (i >= WARMUP) {
        session.commit.push(end - commitStart);
        session.turn.push(end - turnStart);
      }
      await database.db.deleteFrom('session_messages').where('session_id', '=', session.id).where('seq', '>', session.size).execute();
      await database.db.updateTable('sessions').set({ next_seq: session.size + 1, message_count: session.size }).where('id', '=', session.id).execute();
    }
  }
  const bySize: Record<number, { commit: Stats; turn: Stats }> = {};
  for (const session of sessions) {
    await store.delete(session.id);
    bySize[session.size] = { commit: stats(session.commit), turn: stats(session.turn) };
  }
  return bySize;
}

async function backend(name: string, url: string, cleanup: () => Promise<void>) {
  const database = openDatabase({ url, connectTimeoutSeconds: 5, log: silent });
  try {
    await migrate(database, { ...sessionMigrations });
    const bySize = await measure(database);
    for (const size of SIZES) {
      process.stdout.write(`${name} ${String(size).padStart(4)} messages: commit median ${bySize[size]!.commit.median_ms} ms p99 ${bySize[size]!.commit.p99_ms} ms; whole turn median ${bySize[size]!.turn.median_ms} ms\n`);
    }
    const small = bySize[SIZES[0]!]!;
    const large = bySize[SIZES[1]!]!;
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    return {
      sizes: bySize,
      commit_ratio_1000_vs_10: { median: ratio(large.commit.median_ms, small.commit.median_ms), p99: ratio(large.commit.p99_ms, small.commit.p99_ms) },
      turn_ratio_1000_vs_10: { median: ratio(large.turn.median_ms, small.turn.median_ms), p99: ratio(large.turn.p99_ms, small.turn.p99_ms) },
      meets_target_1_5x: ratio(large.commit.median_ms, small.commit.median_ms) <= 1.5,
    };
  } finally {
    await database.close();
    await cleanup();
  }
}


async function main() {
  const results: Record<string, unknown> = {};
  const dir = mkdtempSync(join(tmpdir(), 'bench-sessions-'));
  results.sqlite = await backend('SQLite    ', `sqlite:${join(dir, 'bench.db')}`, async () => rmSync(dir, { recursive: true, force: true }));
  const schema = await postgresSchema();
  if (schema !== undefined) results.postgres = await backend('PostgreSQL', schema.url, () => schema.drop());

  const sqliteVersion = (new SQLite(':memory:').prepare('select sqlite_version() as v').get() as { v: string }).v;
  const date = new Date().toISOString().slice(0, 10);
  const report = {
    benchmark: 'session-append',
    date: new Date().toISOString(),
    what: 'one committed turn (user 200 chars + assistant 600 chars) appended to a session holding N messages; "turn" adds the lease and the read of the last 100 messages',
    iterations: ITERATIONS,
    warmup: WARMUP,
    environment: { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, sqlite: sqliteVersion },
    target: 'commit median at 1000 messages <= 1.5x that at 10',
    results,
  };
  const out = join(import.meta.dirname, 'results');
  mkdirSync(out, { recursive: true });
  const file = join(out, `session-append-${date}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`wrote ${file}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
