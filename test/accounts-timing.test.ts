// Timing checks (#12, #14, #17): interleaved samples after a warm-up, compared by the ratio of
// medians, run serially and retried once, since the machine is shared. The server runs as its own
// process: in process, its background work would delay the test's HTTP client, not the answer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, authEnv, PASSWORD, uniqueEmail, type TestApp } from './support/accounts.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js';

const SAMPLES = 40;
const WARM_UP = 10;

let sink: SmtpSink;
let server: ServerProcess;
let app: TestApp;
let dir: string;

beforeAll(async () => {
  sink = await startSmtpSink();
  dir = mkdtempSync(join(tmpdir(), 'accounts-timing-'));
  server = await spawnServer({
    ENABLE_PERSISTENCE: 'false',
    ENABLE_RATE_LIMITING: 'false',
    LOG_LEVEL: 'warn',
    ...authEnv(sink, {
      DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
      LOGIN_RATE_LIMIT_ATTEMPTS: '100000',
      LOGIN_ACCOUNT_RATE_LIMIT_ATTEMPTS: '100000',
      EMAIL_RATE_LIMIT_PER_IP: '100000',
      VERIFICATION_RATE_LIMIT_SECONDS: '0',
    }),
  }).ready;
  // AuthClient needs only the URL of the app it talks to.
  app = { url: server.url } as TestApp;
});

afterAll(async () => {
  await server.stop();
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Existing accounts, written straight to the database: hashing 50 passwords would only slow the suite. */
function seedAccounts(count: number, prefix: string): string[] {
  const db = new SQLite(join(dir, 'db.sqlite'));
  const insert = db.prepare("insert into users (id, email, password_hash, email_verified, created_at, updated_at) values (?, ?, '$argon2id$seeded', 1, 0, 0)");
  const emails = Array.from({ length: count }, () => uniqueEmail(prefix));
  for (const email of emails) insert.run(`seed-${email}`, email);
  db.close();
  return emails;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return (sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2;
};

async function timed(request: () => Promise<Response>, expected: number): Promise<number> {
  const started = performance.now();
  const response = await request();
  const elapsed = performance.now() - started;
  await response.arrayBuffer();
  expect(response.status).toBe(expected);
  return elapsed;
}

/** Interleaves the two classes and returns median(a) / median(b). */
async function ratio(a: (i: number) => Promise<number>, b: (i: number) => Promise<number>): Promise<{ ratio: number; a: number; b: number }> {
  for (let i = 0; i < WARM_UP; i++) {
    await a(-1 - i);
    await b(-1 - i);
  }
  const samplesA: number[] = [];
  const samplesB: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (i % 2 === 0) {
      samplesA.push(await a(i));
      samplesB.push(await b(i));
    } else {
      samplesB.push(await b(i));
      samplesA.push(await a(i));
    }
  }
  return { ratio: median(samplesA) / median(samplesB), a: median(samplesA), b: median(samplesB) };
}

describe('timing', { retry: 1 }, () => {
  it('login: an unknown email takes as long as a wrong password (#12)', async () => {
    const c = new AuthClient(app, sink);
    const { email } = await c.verifiedUser();
    const result = await ratio(
      () => timed(() => c.post('/login', { email: uniqueEmail('nobody'), password: 'wrong-password-1' }), 401),
      () => timed(() => c.post('/login', { email, password: 'wrong-password-1' }), 401),
    );
    console.log(`login unknown/known: ${result.a.toFixed(2)} / ${result.b.toFixed(2)} ms = ${result.ratio.toFixed(2)}`);
    expect(result.ratio).toBeGreaterThanOrEqual(0.7);
    expect(result.ratio).toBeLessThanOrEqual(1.4);
  });

  it('password-reset: an existing address answers as fast as an unknown one, even with a slow mail server (#14)', async () => {
    const c = new AuthClient(app, sink);
    const existing = seedAccounts(SAMPLES + WARM_UP, 'reset');
    sink.delayMs = 300;
    try {
      let next = 0;
      const result = await ratio(
        () => timed(() => c.post('/password-reset', { email: existing[next++]! }), 200),
        () => timed(() => c.post('/password-reset', { email: uniqueEmail('nobody') }), 200),
      );
      console.log(`reset existing/unknown: ${result.a.toFixed(2)} / ${result.b.toFixed(2)} ms = ${result.ratio.toFixed(2)}`);
      expect(result.a).toBeLessThan(150); // the 300 ms mail server is not on the request path
      // Sub-millisecond medians make the ratio noisy; a difference under 1 ms cannot be an SMTP round trip.
      if (Math.abs(result.a - result.b) > 1) {
        expect(result.ratio).toBeGreaterThanOrEqual(0.7);
        expect(result.ratio).toBeLessThanOrEqual(1.4);
      }
    } finally {
      sink.delayMs = 0;
    }
    await sink.waitFor(() => sink.count(existing.at(-1)!, /Reset your password/) === 1, 30_000);
  });

  it('register: an existing email takes as long as a new one (#17)', async () => {
    const c = new AuthClient(app, sink);
    const existing = seedAccounts(SAMPLES + WARM_UP, 'taken');
    let next = 0;
    const result = await ratio(
      () => timed(() => c.register(existing[next++]!, PASSWORD), 201),
      () => timed(() => c.register(uniqueEmail('fresh'), PASSWORD), 201),
    );
    console.log(`register existing/new: ${result.a.toFixed(2)} / ${result.b.toFixed(2)} ms = ${result.ratio.toFixed(2)}`);
    expect(result.ratio).toBeGreaterThanOrEqual(0.7);
    expect(result.ratio).toBeLessThanOrEqual(1.4);
  });
});
