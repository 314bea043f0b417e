import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import { Retention, scheduleRetention } from './retention.js';

export { Retention, retentionMigrations, scheduleRetention, type RetentionOptions, type SweepResult } from './retention.js';

/** Prunes the database in the background (see Retention); stops before the database closes. */
export function startRetention(app: FastifyInstance, config: Config, database: Database): Retention {
  const retention = new Retention({ database, sessionRetentionDays: config.sessionRetentionDays, batchSize: config.retentionBatchSize, log: app.log });
  const schedule = scheduleRetention(retention, config.retentionIntervalSeconds, app.log);
  // Registered after the database's close hook, so it runs before it (Fastify runs onClose hooks last-in first-out).
  app.addHook('onClose', () => schedule.stop());
  return retention;
}
