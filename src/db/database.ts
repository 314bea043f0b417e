import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Migration } from 'kysely';
import type { FastifyBaseLogger } from 'fastify';
import { ChassisError } from '../errors.js';
import { startCheckpointer } from './sqlite-checkpointer.js';
import { SqliteGroupCommit } from './sqlite-group-commit.js';
import type { Tables } from './tables.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Database {
  db: Kysely<Tables>;
  dialect: Dialect;
  /**
   * SQLite only: group commit for a hot path's writes, each a synchronous function of prepared
   * statements (no promise per statement, one transaction for all the writes of a loop turn).
   */
  sqliteWrites?: SqliteGroupCommit;
  /** True when a trivial query answers within the connect timeout. */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url: string;
  connectTimeoutSeconds: number;
  log: FastifyBaseLogger;
}

/**
 * `sqlite:<path>` (the embedded default; `sqlite::memory:` for a throw-away one) or `postgres://…`.
 * SQLite runs in WAL mode with a busy timeout so concurrent writers wait instead of failing; the
 * PostgreSQL pool has a connect timeout (pg's default waits forever) and handles idle-client errors.
 */
export function openDatabase(options: DatabaseOptions): Database {
  const { url } = options;
  if (url.startsWith('sqlite:')) return openSqlite(url.slice('sqlite:'.length), options);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return openPostgres(url, options);
  throw new ChassisError(500, 'INTERNAL_ERROR', 'DATABASE_URL must start with sqlite: or postgres://');
}

function openSqlite(path: string, options: DatabaseOptions): Database {
  const file = path === '' ? ':memory:' : path;
  if (file !== ':memory:') makeDirectory(dirname(file));
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`busy_timeout = ${Math.round(options.connectTimeoutSeconds * 1000)}`);
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  const prepare = statementCache((text) => sqlite.prepare(text));
  const db = new Kysely<Tables>({ dialect: new SqliteDialect({ database: { close: () => void sqlite.close(), prepare } }) });
  const checkpointer = file === ':memory:' ? undefined : startCheckpointer(sqlite, file, Math.round(options.connectTimeoutSeconds * 1000), options.log);
  return {
    db,
    dialect: 'sqlite',
    sqliteWrites: new SqliteGroupCommit(sqlite, db, prepare, statementCache((text) => sqlite.prepare(text).raw(true))),
    async healthy() {
      return sqlite.open;
    },
    async close() {
      // First the worker's connection, so the last one to close (ours) checkpoints and removes the WAL.
      await checkpointer?.close();
      await db.destroy();
    },
  };
}

/** Distinct SQL texts kept prepared; the hot path uses a handful, dynamic queries (IN lists, batches) more. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely's SQLite driver calls `prepare` for every query it runs, and preparing (parsing and
 * planning the SQL) cost more than running it on the session hot path. This hands it the same
 * prepared statement for the same SQL text instead (and the group commit's writes use the same
 * cache). Safe because the driver and the group commit take turns on the single connection, one
 * query at a time (a statement is never re-bound while another call still reads it), and
 * better-sqlite3 re-binds all parameters on every run. Oldest texts are dropped first.
 */
function statementCache(make: (text: string) => SQLite.Statement): (text: string) => SQLite.Statement {
  const statements = new Map<string, SQLite.Statement>();
  return (text) => {
    let statement = statements.get(text);
    if (statement === undefined) {
      statement = make(text);
      if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      statements.set(text, statement);
    }
    return statement;
  };
}

/**
 * mkdir -p, one level at a time: Node's own `recursive: true` loops forever where mkdir answers
 * ENOENT under an existing parent (e.g. anything under /proc), which hung the start.
 */
function makeDirectory(directory: string): void {
  if (existsSync(directory)) return;
  const parent = dirname(directory);
  if (parent !== directory) makeDirectory(parent);
  try {
    mkdirSync(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

function openPostgres(url: string, options: DatabaseOptions): Database {
  // Loaded here, not at the top: a server on SQLite never pays for pg's memory.
  const pg = createRequire(import.meta.url)('pg') as typeof import('pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: Math.round(options.connectTimeoutSeconds * 1000),
    idleTimeoutMillis: 30_000,
    // A query that hangs (server stopped mid-query) must not hang the request forever.
    query_timeout: Math.round(options.connectTimeoutSeconds * 1000) + 10_000,
  });
  // Without a listener, an idle client's error (server restart) would crash the process.
  pool.on('error', (error) => options.log.warn({ err: error }, 'postgres idle client error'));
  // The pool listens only to idle clients: a checked-out client whose server goes away emits
  // 'error' with no listener, which would crash the process. Its query fails anyway (→ 503).
  pool.on('connect', (client) => client.on('error', (error) => options.log.debug({ err: error }, 'postgres client error')));
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    async healthy() {
      try {
        const client = await pool.connect();
        try {
          await client.query('select 1');
          return true;
        } finally {
          client.release();
        }
      } catch {
        return false;
      }
    },
    close: () => db.destroy(),
  };
}

/**
 * Applies every module's migrations, in name order, once each. Names start with a date so modules
 * interleave in the order they were written; applying them is idempotent (Kysely records them).
 */
export async function migrate(database: Database, migrations: Record<string, Migration>): Promise<void> {
  const migrator = new Migrator({
    db: database.db,
    provider: { getMigrations: async () => migrations },
    allowUnorderedMigrations: true,
    // Kysely otherwise takes a migration table in ANY schema as ours, and skips creating it here.
    migrationTableSchema: database.dialect === 'postgres' ? await currentSchema(database) : undefined,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(`database migration ${failed ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function currentSchema(database: Database): Promise<string> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(database.db);
  return rows[0]!.schema;
}
