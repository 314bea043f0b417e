export { createOpenAIModelClient } from './openai-client.js';
export { jsonText } from './json-text.js';
export type * from './types.js';
