export { RunLog, type LoggedEvent, type RunEnd, type RunInfo, type RunStatus } from './run-log.js';
export { RunRegistry, type RunView } from './run-registry.js';
