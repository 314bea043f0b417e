// A real Chromium (Debian's /usr/bin/chromium, driven by playwright-core) for the playground tests,
// and the built page they need.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots of the main screens (git-ignored). */
export const SCREENSHOTS = join(ROOT, 'test-results', 'playground');

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  // launch() gives every browser a fresh temporary profile (its own --user-data-dir), deleted on close.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

function newestMtime(directory: string): number {
  let newest = 0;
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    const stat = statSync(path);
    newest = Math.max(newest, stat.isDirectory() ? newestMtime(path) : stat.mtimeMs);
  }
  return newest;
}

/** Builds packages/playground when its dist is missing or older than its sources (CI builds it before the tests). */
export function ensurePlaygroundBuilt(): void {
  const index = join(ROOT, 'packages/playground/dist/index.html');
  const sources = Math.max(newestMtime(join(ROOT, 'packages/playground/src')), newestMtime(join(ROOT, 'packages/client/src')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  execFileSync('npm', ['run', 'build:playground'], { cwd: ROOT, stdio: 'ignore' });
}
