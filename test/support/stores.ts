import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';

export const PG_BASE_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_TEST_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function reachable(check: () => Promise<unknown>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the machine's PostgreSQL / Redis answer. In CI they must: a missing store fails the run
 * instead of silently skipping the tests that need it. Elsewhere the tests skip with a message.
 */
export async function storesAvailable(): Promise<{ pg: boolean; redis: boolean }> {
  const pgUp = await reachable(async () => {
    const client = new pg.Client({ connectionString: PG_BASE_URL, connectionTimeoutMillis: 2000 });
    await client.connect();
    await client.end();
  });
  const redisUp = await reachable(async () => {
    const client = new Redis(REDIS_TEST_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await client.connect();
    await client.ping();
    client.disconnect();
  });
  if (process.env.CI && (!pgUp || !redisUp)) {
    throw new Error(`CI needs PostgreSQL and Redis on 127.0.0.1 (pg: ${pgUp}, redis: ${redisUp})`);
  }
  if (!pgUp) console.warn('PostgreSQL is not reachable at', PG_BASE_URL, '- skipping its tests');
  if (!redisUp) console.warn('Redis is not reachable at', REDIS_TEST_URL, '- skipping its tests');
  return { pg: pgUp, redis: redisUp };
}

/** A fresh schema in the shared test database, so each test app has its own tables. */
export async function createPgSchema(): Promise<{ url: string; schema: string; drop(): Promise<void> }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_BASE_URL });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = `${PG_BASE_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    url,
    schema,
    async drop() {
      const client = new pg.Client({ connectionString: PG_BASE_URL });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    },
  };
}

/** A Redis key prefix no other test app uses. */
export function uniqueRedisPrefix(): string {
  return `test:${randomBytes(6).toString('hex')}:`;
}
