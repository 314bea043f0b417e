export { createOpenAIModelClient } from './openai-client.js';
export type * from './types.js';
