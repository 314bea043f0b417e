import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';
import type { FastifyBaseLogger } from 'fastify';

/** How often the worker copies committed WAL pages into the database file. */
const CHECKPOINT_INTERVAL_MS = 200;
/** SQLite's own default, restored when the worker is gone. */
const AUTOCHECKPOINT_PAGES = 1000;

// Plain CommonJS run with `eval`, so it works the same from dist/ and from the TypeScript sources.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyMs);
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ warning: String(error && error.message) });
  }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * WAL checkpoints on a worker thread instead of inside a commit on the event loop (issue #13). By
 * default SQLite checkpoints in whichever commit pushes the WAL past 1,000 pages: that commit copies
 * the pages into the database file and fsyncs it, and on a busy disk the whole server waits for it.
 * Here the main connection never checkpoints; a second connection on a worker thread runs a PASSIVE
 * checkpoint (which never blocks writers or readers) every 200 ms. Durability is unchanged: commits
 * go to the WAL exactly as before, and the checkpoint fsyncs the database before the WAL is reused.
 * If the worker fails, the main connection checkpoints by itself again.
 */
export function startCheckpointer(sqlite: SQLite.Database, file: string, busyMs: number, log: FastifyBaseLogger): { close(): Promise<void> } {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  let closing = false;
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, file, busyMs, intervalMs: CHECKPOINT_INTERVAL_MS } });
  // Never what keeps the process alive: close() stops it, and an exiting process takes it along.
  worker.unref();
  sqlite.pragma('wal_autocheckpoint = 0');
  const fallBack = (reason: unknown) => {
    if (closing) return;
    log.warn({ err: reason }, 'sqlite checkpoint worker stopped; checkpointing on the main connection again');
    if (sqlite.open) sqlite.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
  };
  worker.on('message', (message: { warning?: string }) => log.warn({ detail: message.warning }, 'sqlite background checkpoint failed'));
  worker.on('error', fallBack);
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', (code) => {
      fallBack(new Error(`exited with ${code}`));
      resolve();
    }),
  );
  return {
    // Idempotent: a second close waits for the same exit.
    async close() {
      if (!closing) {
        closing = true;
        worker.postMessage('close');
        const timer = setTimeout(() => void worker.terminate(), 2_000);
        void exited.then(() => clearTimeout(timer));
      }
      await exited;
    },
  };
}
