export { answerOf, RunLog, type EventBatch, type RunEnd, type RunEvent, type RunInfo, type RunStatus } from './run-log.js';
export { RunRegistry, type RunView } from './run-registry.js';
export { DatabaseIdempotencyStore, MemoryIdempotencyStore, idempotencyMigrations, type IdempotencyRecord, type IdempotencyStore, type StoredResponse } from './idempotency.js';
