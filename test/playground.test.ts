// The web playground in a real browser (Chromium via playwright-core) against a real server and the
// fake upstream: both ways to sign in, a streamed Markdown answer with a tool call, cancel,
// reload-and-resume, the session list with history, delete and sharing, and errors people can read.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ChassisClient } from '../packages/client/src/index.js';
import { recordingTool } from './support/approvals.js';
import { PLAYGROUND_CSP } from '../src/http/playground.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { startApp, type TestApp } from './support/app.js';
import { JWT_SECRET, PASSWORD, uniqueEmail } from './support/accounts.js';
import { ensurePlaygroundBuilt, launchChromium, SCREENSHOTS } from './support/browser.js';

const KEY = 'playground-key';
let fake: FakeUpstream;
let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  ensurePlaygroundBuilt();
  fake = await startFakeUpstream();
  t = await startApp({
    OPENAI_BASE_URL: fake.url,
    OPENAI_MODEL: 'fake-model',
    CHASSIS_API_KEY: KEY,
    ENABLE_USER_AUTH: 'true',
    JWT_SECRET_KEY: JWT_SECRET,
    ENABLE_PERSISTENCE: 'true',
    DATABASE_URL: 'sqlite::memory:',
  });
  browser = await launchChromium();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await t?.close();
  await fake?.close();
});

interface Opened {
  context: BrowserContext;
  page: Page;
  /** Console errors, CSP violations included. */
  problems: string[];
}

async function open(url: string, viewport = { width: 1200, height: 800 }): Promise<Opened> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    // Failed API calls are expected in some tests (the agents list is a 404 until agents exist);
    // a page file that fails to load is caught below by its response.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(message.text());
  });
  page.on('response', (response) => {
    if (new URL(response.url()).pathname.startsWith('/playground') && response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
  });
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${url}/playground`);
  return { context, page, problems };
}

async function signInWithKey(page: Page, userId: string): Promise<void> {
  await page.getByLabel('API key', { exact: true }).fill(KEY);
  await page.getByLabel(/User ID/).fill(userId);
  await page.getByTestId('api-key-submit').click();
  await page.getByTestId('message-input').waitFor();
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
const asUser = (userId: string) => new ChassisClient({ baseUrl: t.url, apiKey: KEY, userId });
const lastAssistant = (page: Page) => page.locator('[data-testid="message"][data-role="assistant"]').last();

describe('playground page', { timeout: 60_000 }, () => {
  it('is served under our CSP, / redirects to it, and the files are ours', async () => {
    const page = await fetch(`${t.url}/playground`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(PLAYGROUND_CSP);
    const html = await page.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/<style|style="/);
    expect(html).not.toMatch(/https?:\/\//);
    const root = await fetch(`${t.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/playground/');
    const script = /src="(\/playground\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const asset = await fetch(`${t.url}${script}`);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${t.url}/playground/assets/nope.js`)).status).toBe(404);
  });

  it('API key: streams a Markdown answer (no HTML from the model), shows the tool call, reasoning collapsed, usage', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' }], usage: { prompt_tokens: 10, completion_tokens: 5 } },
      {
        kind: 'text',
        reasoning: 'The tool said 4.',
        content: 'The answer is **4**.\n\n```js\nconsole.log(2 + 2);\n```\n\n<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>',
        chunkSize: 5,
        usage: { prompt_tokens: 21, completion_tokens: 9 },
      },
    );
    const { context, page, problems } = await open(t.url);
    await shot(page, '01-sign-in');
    await signInWithKey(page, 'alice');
    await page.getByTestId('message-input').fill('What is 2+2?');
    // The keyboard sends (Enter), as a person would.
    await page.getByTestId('message-input').press('Enter');
    const answer = lastAssistant(page);
    await answer.getByTestId('usage').waitFor();
    expect(await answer.locator('strong').textContent()).toBe('4');
    expect(await answer.locator('pre code').textContent()).toContain('console.log(2 + 2);');
    // The model's HTML is text, never markup.
    expect(await answer.locator('img, script').count()).toBe(0);
    expect(await answer.textContent()).toContain('<img src=x onerror="window.__pwned=1">');
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    // Tool call with its arguments and result.
    const call = answer.getByTestId('tool-call');
    expect(await call.getByTestId('tool-arguments').textContent()).toContain('"operation": "add"');
    expect(await call.getByTestId('tool-result').textContent()).toBe('4');
    // Reasoning is there, collapsed.
    expect(await answer.getByTestId('reasoning').getAttribute('open')).toBeNull();
    expect(await answer.getByTestId('usage').textContent()).toContain('31 prompt + 14 completion = 45') // summed over both model calls;
    expect(await page.locator('[data-testid="message"][data-role="user"]').last().textContent()).toContain('What is 2+2?');
    // The new session is listed.
    await page.getByTestId('session-list').locator('li').first().waitFor();
    expect(await page.getByTestId('session-list').textContent()).toContain('What is 2+2?');
    await shot(page, '02-chat');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('cancel stops the running answer on the server', async () => {
    fake.script({ kind: 'text', content: 'y'.repeat(400), chunkSize: 2, delayMs: 30 });
    const { context, page } = await open(t.url);
    await signInWithKey(page, 'bob');
    await page.getByTestId('message-input').fill('Write a lot');
    await page.getByTestId('send').click();
    const answer = lastAssistant(page);
    await answer.locator('.content', { hasText: 'yyyy' }).waitFor();
    await page.getByTestId('cancel').click();
    await answer.getByTestId('message-error').waitFor();
    expect(await answer.getByTestId('message-error').textContent()).toBe('Cancelled.');
    await page.getByTestId('send').waitFor();
    const runs = await asUser('bob').listSessions();
    expect(runs.sessions.length).toBeLessThanOrEqual(1);
    const shown = (await answer.locator('.content').textContent()) ?? '';
    expect(shown.length).toBeLessThan(400);
    await context.close();
  });

  it('a reload in the middle of an answer resumes the stream where the page left it', async () => {
    const pieces = Array.from({ length: 40 }, (_, index) => `part${index} `);
    fake.script({ kind: 'text', content: pieces.join(''), chunks: pieces, delayMs: 60 });
    const requestsBefore = fake.requests.length;
    const { context, page, problems } = await open(t.url);
    await signInWithKey(page, 'carol');
    await page.getByTestId('message-input').fill('Count slowly');
    await page.getByTestId('send').click();
    await lastAssistant(page).locator('.content', { hasText: 'part3' }).waitFor();
    await page.reload();
    // Back on the page: the same answer, streamed to its end, once.
    const answer = lastAssistant(page);
    await answer.getByTestId('usage').waitFor({ timeout: 20_000 });
    expect((await answer.locator('.content').textContent())?.trim()).toBe(pieces.join('').trim());
    expect(await page.locator('[data-testid="message"][data-role="assistant"]').count()).toBe(1);
    expect(await page.locator('[data-testid="message"][data-role="user"]').textContent()).toContain('Count slowly');
    // The model was asked once: the reload joined the run, it did not start another.
    expect(fake.requests.length - requestsBefore).toBe(1);
    await shot(page, '03-resumed');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('session list: open one with its history (paged), share it, delete it', async () => {
    fake.setDefault({ kind: 'text', content: 'noted' });
    const dave = asUser('dave');
    const made = await dave.complete({ message: 'turn 0', metadata: { title: 'Long session' } });
    for (let turn = 1; turn < 30; turn++) await dave.complete({ message: `turn ${turn}`, session_id: made.session_id! });
    const { context, page } = await open(t.url, { width: 390, height: 844 });
    await signInWithKey(page, 'dave');
    // Phone width: the session list sits behind its button, nothing overflows sideways.
    await page.getByRole('button', { name: 'Sessions' }).click();
    const entry = page.getByTestId('session-list').locator('li', { hasText: 'Long session' });
    await entry.waitFor();
    expect(await entry.textContent()).toContain('60 messages');
    await entry.locator('.open-session').click();
    await page.locator('[data-testid="message"]', { hasText: 'turn 29' }).waitFor();
    // 60 stored messages: the latest page (50) first, the rest on request.
    expect(await page.getByTestId('message').count()).toBe(50);
    await page.getByTestId('load-earlier').click();
    await page.locator('[data-testid="message"]', { hasText: 'turn 0' }).first().waitFor();
    expect(await page.getByTestId('message').count()).toBe(60);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await shot(page, '04-phone-history');

    // Sharing: public plus a whitelist, as the server then reports it.
    await page.getByTestId('sharing').locator('summary').click();
    await page.getByTestId('share-public').check();
    await page.getByTestId('share-whitelist').fill('erin, frank');
    await page.getByTestId('share-save').click();
    await page.getByTestId('share-status').waitFor();
    expect(await page.getByTestId('share-status').textContent()).toContain('public, 2 allowed');
    const access = (await dave.getSession(made.session_id!)).access!;
    expect(access).toMatchObject({ is_public: true, whitelist: ['erin', 'frank'], blacklist: [] });
    await shot(page, '05-phone-sharing');

    // Delete asks once more, then the session is gone from the list and the server.
    await page.getByRole('button', { name: 'Sessions' }).click();
    await entry.getByTestId('delete-session').click();
    await entry.getByRole('button', { name: /Delete Long session/ }).filter({ hasText: 'Really delete?' }).click();
    await entry.waitFor({ state: 'detached' });
    await expect(dave.getSession(made.session_id!)).rejects.toMatchObject({ status: 404 });
    await context.close();
  });

  it('account: register, the mailed code (dev outbox hint), log in, stay logged in across a reload, log out', async () => {
    const email = uniqueEmail('browser');
    const { context, page, problems } = await open(t.url);
    await page.getByTestId('to-register').click();
    await page.getByTestId('email').fill(email);
    await page.getByTestId('password').fill(PASSWORD);
    await page.getByTestId('account-submit').click();
    await page.getByTestId('code').waitFor();
    expect(await page.getByTestId('dev-outbox-hint').textContent()).toContain('DEV OUTBOX');
    await shot(page, '06-verify-code');
    const mail = t.logs.find((line) => line.outbox?.to === email);
    const code = /\b(\d{6})\b/.exec(mail!.outbox.text)![1]!;
    await page.getByTestId('code').fill(code);
    await page.getByTestId('account-submit').click();
    await page.getByRole('status').filter({ hasText: 'Email verified' }).waitFor();
    await page.getByTestId('password').fill(PASSWORD);
    await page.getByTestId('account-submit').click();
    await page.getByTestId('signed-in-as').filter({ hasText: email }).waitFor();

    fake.script({ kind: 'text', content: 'Hello, account holder.' });
    await page.getByTestId('message-input').fill('hello');
    await page.getByTestId('send').click();
    await lastAssistant(page).getByTestId('usage').waitFor();

    await page.reload();
    await page.getByTestId('signed-in-as').filter({ hasText: email }).waitFor();
    // The reload kept the open conversation too.
    await page.getByTestId('message').filter({ hasText: 'Hello, account holder.' }).waitFor();
    await page.getByTestId('session-list').locator('li').first().waitFor();
    await page.getByTestId('sign-out').click();
    await page.getByTestId('email').waitFor();
    expect(await page.evaluate("localStorage.getItem('agent-chassis.tokens')")).toBeNull();
    expect(problems).toEqual([]);
    await context.close();
  });

  it('a wrong API key is refused with a clear message', async () => {
    const { context, page } = await open(t.url);
    await page.getByLabel('API key', { exact: true }).fill('wrong-key');
    await page.getByTestId('api-key-submit').click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('Invalid API key');
    await context.close();
  });
});

describe('errors people can read', { timeout: 60_000 }, () => {
  let bare: TestApp;
  beforeAll(async () => {
    // No model configured, and a small general rate limit.
    bare = await startApp({ CHASSIS_API_KEY: KEY, ENABLE_PERSISTENCE: 'true', DATABASE_URL: 'sqlite::memory:', ENABLE_RATE_LIMITING: 'true', API_RATE_LIMIT_PER_MINUTE: '12' });
  });
  afterAll(() => bare?.close());

  it('model not configured, then a rate limit with its retry time', async () => {
    const { context, page } = await open(bare.url);
    await signInWithKey(page, 'gina');
    await page.getByTestId('message-input').fill('hi');
    await page.getByTestId('send').click();
    await page.getByTestId('error').waitFor();
    expect(await page.getByTestId('error').textContent()).toMatch(/The server has no model: No model provider is configured: set OPENAI_API_KEY/);
    await shot(page, '07-error-model');

    // Spend the rest of gina's minute from outside, then try again in the page.
    const gina = new ChassisClient({ baseUrl: bare.url, apiKey: KEY, userId: 'gina' });
    for (let call = 0; call < 20; call++) {
      const limited = await gina.listTools().then(
        () => false,
        (error: { code?: string }) => error.code === 'RATE_LIMITED',
      );
      if (limited) break;
    }
    await page.getByRole('button', { name: 'Dismiss the error' }).click();
    await page.getByTestId('message-input').fill('hi again');
    await page.getByTestId('send').click();
    await page.getByTestId('error').waitFor();
    expect(await page.getByTestId('error').textContent()).toMatch(/^Too many requests\. Try again in \d+ s\./);
    expect(await lastAssistant(page).getByTestId('message-error').textContent()).toMatch(/^Too many requests\. Try again in \d+ s\.$/);
    await shot(page, '08-error-rate-limit');
    await context.close();
  });

  it('an upstream that fails shows as the provider’s failure', async () => {
    const failing = await startFakeUpstream();
    failing.setDefault({ kind: 'status', status: 500 });
    const app = await startApp({ OPENAI_BASE_URL: failing.url, UPSTREAM_MAX_RETRIES: '0', CHASSIS_API_KEY: KEY, ENABLE_PERSISTENCE: 'true', DATABASE_URL: 'sqlite::memory:' });
    try {
      const { context, page } = await open(app.url);
      await signInWithKey(page, 'hank');
      await page.getByTestId('message-input').fill('hi');
      await page.getByTestId('send').click();
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error').textContent()).toMatch(/The model provider failed \(UPSTREAM_ERROR\)/);
      await context.close();
    } finally {
      await app.close();
      await failing.close();
    }
  });
});

describe('agents and approvals on the real server', { timeout: 60_000 }, () => {
  let app: TestApp;
  let tool: ReturnType<typeof recordingTool>;
  const emptyAgents = mkdtempSync(join(tmpdir(), 'no-agents-'));
  beforeAll(async () => {
    tool = recordingTool('delete_file');
    // AGENTS_DIR defaults to ./agents: the repository's example agents (calculator, invoice-totals).
    app = await startApp({ OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: KEY, ENABLE_PERSISTENCE: 'true', DATABASE_URL: 'sqlite::memory:' }, { tools: [tool] });
  });
  afterAll(async () => {
    await app?.close();
    rmSync(emptyAgents, { recursive: true, force: true });
  });

  it('shows the agent picker when the server has agents and runs the chosen one; no picker without agents', async () => {
    const { context, page } = await open(app.url);
    await signInWithKey(page, 'ivy');
    const picker = page.getByTestId('agent-select');
    await picker.waitFor();
    await picker.selectOption('calculator');
    expect(await page.getByTestId('model-input').isDisabled()).toBe(true);
    fake.script({ kind: 'text', content: 'Calculated.' });
    const before = fake.requests.length;
    await page.getByTestId('message-input').fill('12 * 3?');
    await page.getByTestId('send').click();
    await lastAssistant(page).getByTestId('usage').waitFor();
    // The model got the agent's instructions as its system prompt.
    const sent = fake.requests[before]!.body;
    expect(sent.messages[0]).toMatchObject({ role: 'system' });
    expect(sent.messages[0].content).toContain('careful calculator');
    await context.close();

    const bare = await startApp({ OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: KEY, AGENTS_DIR: emptyAgents });
    try {
      const plain = await open(bare.url);
      const agentsAnswered = plain.page.waitForResponse((response) => response.url().endsWith('/api/v1/agents'));
      await signInWithKey(plain.page, 'ivy');
      expect(await (await agentsAnswered).json()).toEqual({ agents: [] });
      await plain.page.getByTestId('model-input').waitFor();
      expect(await plain.page.getByTestId('agent-select').count()).toBe(0);
      await plain.context.close();
    } finally {
      await bare.close();
    }
  });

  it('a tool call that needs approval shows Approve/Deny, survives a reload, and runs only once approved', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ name: 'delete_file', arguments: '{"path":"/tmp/x"}' }] }, { kind: 'text', content: 'Deleted /tmp/x.' });
    const callsBefore = tool.calls.length;
    const { context, page, problems } = await open(app.url);
    await signInWithKey(page, 'jay');
    await page.getByTestId('message-input').fill('delete /tmp/x');
    await page.getByTestId('send').click();
    let answer = lastAssistant(page);
    await answer.getByTestId('approve').waitFor();
    expect(await answer.getByTestId('tool-call').textContent()).toContain('waiting for your decision');
    await shot(page, '09-approval');
    expect(tool.calls.length).toBe(callsBefore);
    // The page comes back to the waiting run after a reload.
    await page.reload();
    answer = lastAssistant(page);
    await answer.getByTestId('approve').waitFor();
    await answer.getByTestId('approve').click();
    await answer.getByTestId('usage').waitFor();
    expect(await answer.textContent()).toContain('Approved');
    expect(await answer.getByTestId('tool-result').textContent()).toBe('ran delete_file on /tmp/x');
    expect(await answer.locator('.content').textContent()).toContain('Deleted /tmp/x.');
    expect(tool.calls.length).toBe(callsBefore + 1);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('Deny: the call never runs and the model is told it was denied', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ name: 'delete_file', arguments: '{"path":"/etc/passwd"}' }] }, { kind: 'text', content: 'Understood, not deleted.' });
    const callsBefore = tool.calls.length;
    const { context, page } = await open(app.url);
    await signInWithKey(page, 'kim');
    await page.getByTestId('message-input').fill('delete /etc/passwd');
    await page.getByTestId('send').click();
    const answer = lastAssistant(page);
    await answer.getByTestId('deny').click();
    await answer.getByTestId('usage').waitFor();
    expect(await answer.textContent()).toContain('Denied');
    expect(await answer.getByTestId('tool-result').textContent()).toMatch(/^Denied by the user/);
    expect(tool.calls.length).toBe(callsBefore);
    await context.close();
  });
});

describe('open server', { timeout: 60_000 }, () => {
  it('with no API key and no accounts the page opens straight into the chat', async () => {
    const app = await startApp({ OPENAI_BASE_URL: fake.url, ENABLE_PERSISTENCE: 'true', DATABASE_URL: 'sqlite::memory:' });
    try {
      fake.script({ kind: 'text', content: 'Open hello.' });
      const { context, page, problems } = await open(app.url);
      await page.getByTestId('message-input').fill('hi');
      await page.getByTestId('send').click();
      await lastAssistant(page).getByTestId('usage').waitFor();
      expect(await page.getByTestId('signed-in-as').textContent()).toBe('open server');
      // Sessions have no owner here: the list says how to get one, the conversation survives a reload.
      expect(await page.getByText(/sessions have no owner and cannot be listed/).count()).toBe(1);
      await page.reload();
      await page.getByTestId('message').filter({ hasText: 'Open hello.' }).waitFor();
      await shot(page, '10-open-server');
      expect(problems).toEqual([]);
      await context.close();
    } finally {
      await app.close();
    }
  });
});
