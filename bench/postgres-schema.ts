import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The machine's PostgreSQL (TEST_PG_URL), as the tests use it. */
export const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A throw-away schema for one bench run, or undefined (said on stdout) when PostgreSQL does not answer. */
export async function postgresSchema(): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await admin.connect();
  } catch {
    process.stdout.write(`PostgreSQL not reachable at ${PG_URL}: skipped\n`);
    return undefined;
  }
  const schema = `bench_${randomBytes(6).toString('hex')}`;
  await admin.query(`create schema ${schema}`);
  await admin.end();
  return {
    url: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    },
  };
}
