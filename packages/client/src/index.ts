export { ChassisClient } from './client.js';
export type {
  AccessInfo,
  AccessPatch,
  AgentSummary,
  Approval,
  ChassisClientOptions,
  CompletionRequest,
  CompletionResponse,
  Me,
  MessagePage,
  RunStatus,
  SessionInfo,
  SessionList,
  SessionSummary,
  StoredMessage,
  TokenResponse,
} from './client.js';
export { ChassisApiError, parseRetryAfter } from './errors.js';
export { isTerminal, type StreamEvent, type TerminalEvent } from './events.js';
export { CompletionStream, type StreamOptions, type StreamResult } from './stream.js';
export { memoryTokenStore, webStorageTokenStore, type KeyValueStorage, type StoredTokens, type TokenStore } from './tokens.js';
export type { paths } from './generated/openapi.js';
