export { createOpenAIModelClient } from './openai-client.js';
export { messageJson } from './message-json.js';
export type * from './types.js';
