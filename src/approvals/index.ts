export { ApprovalService, approvalView, type ApprovalServiceOptions, type PendingApproval } from './approval-service.js';
export { approvalMigrations, DatabaseApprovalStore, MemoryApprovalStore, type ApprovalRecord, type ApprovalStore, type PausedRunRecord } from './approval-store.js';
