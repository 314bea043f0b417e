export { runAgent, type AgentRunInput, type AgentDeps, type Checkpoint, type Decision, type Resume } from './run-agent.js';
export { type AgentEvent, type RunEnding, type StepEvent, type StopReason, emptyUsage } from './events.js';
export { newRunId, Run, RunTracker } from './run-tracker.js';
export { clientSideTurn, type Turn, type TurnResult, type SessionTurns, type SessionTurnRequest, type PausedTurn } from './turn.js';
export { driveRun, cancelledError, type RunOutcome } from './drive-run.js';
export { trimHistory } from './history.js';
