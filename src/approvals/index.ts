export { ApprovalService, type ApprovalServiceOptions, type PendingApproval, type RunSettings } from './approval-service.js';
export { approvalMigrations, DatabaseApprovalStore, MemoryApprovalStore, type ApprovalRecord, type ApprovalStore, type PausedRunRecord } from './approval-store.js';
