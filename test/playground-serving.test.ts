// How the server serves the playground files, without a browser: present, missing, switched off.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PLAYGROUND_CSP } from '../src/http/playground.js';
import { startApp } from './support/app.js';

const built = mkdtempSync(join(tmpdir(), 'playground-'));
mkdirSync(join(built, 'assets'));
writeFileSync(join(built, 'index.html'), '<!doctype html><script type="module" src="/playground/assets/app-1.js"></script>');
writeFileSync(join(built, 'assets', 'app-1.js'), 'console.log(1)');
const empty = mkdtempSync(join(tmpdir(), 'playground-empty-'));
afterAll(() => {
  rmSync(built, { recursive: true, force: true });
  rmSync(empty, { recursive: true, force: true });
});

describe('playground files', () => {
  it('serves index and assets under the playground CSP; / redirects; unknown files are 404 JSON', async () => {
    const t = await startApp({ CHASSIS_API_KEY: 'k' }, { playgroundDir: built });
    try {
      for (const path of ['/playground', '/playground/']) {
        const page = await fetch(`${t.url}${path}`);
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
        expect(page.headers.get('content-security-policy')).toBe(PLAYGROUND_CSP);
        expect(page.headers.get('cache-control')).toBe('no-cache');
      }
      const asset = await fetch(`${t.url}/playground/assets/app-1.js`);
      expect(await asset.text()).toBe('console.log(1)');
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      const missing = await fetch(`${t.url}/playground/assets/../../package.json`);
      expect(missing.status).toBe(404);
      const unknown = await fetch(`${t.url}/playground/nope.js`);
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({ code: 'NOT_FOUND' });
      const root = await fetch(`${t.url}/`, { redirect: 'manual' });
      expect(root.status).toBe(302);
      // The API keeps its own strict CSP.
      expect((await fetch(`${t.url}/api/v1/tools`)).headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
      // The page needs no credentials to learn how to sign in.
      expect(await (await fetch(`${t.url}/playground/config.json`)).json()).toEqual({ accounts: false, api_key: true, dev_outbox: true, persistence: false, default_model: 'kimi-k2-thinking' });
    } finally {
      await t.close();
    }
  });

  it('without a build, /playground says how to build it and / is not redirected', async () => {
    const t = await startApp({}, { playgroundDir: empty });
    try {
      const page = await fetch(`${t.url}/playground`);
      expect(page.status).toBe(404);
      expect((await page.json()).detail).toMatch(/npm run build/);
      expect((await fetch(`${t.url}/`, { redirect: 'manual' })).status).toBe(404);
    } finally {
      await t.close();
    }
  });

  it('ENABLE_PLAYGROUND=false serves nothing of it', async () => {
    const t = await startApp({ ENABLE_PLAYGROUND: 'false' }, { playgroundDir: built });
    try {
      expect((await fetch(`${t.url}/playground`)).status).toBe(404);
      expect((await fetch(`${t.url}/playground/config.json`)).status).toBe(404);
      expect((await fetch(`${t.url}/`, { redirect: 'manual' })).status).toBe(404);
    } finally {
      await t.close();
    }
  });
});
