import type { Usage } from '../model/types.js';
import type { RunFacts } from './types.js';

/**
 * The tokens this segment of a run used: a resumed run's outcome carries the whole run's usage
 * (the checkpoint's plus its own), and the earlier segments have counted theirs already.
 */
export function segmentUsage(total: Usage, facts: RunFacts): Usage {
  const before = facts.resumed?.usage;
  if (before === undefined) return total;
  const prompt = Math.max(0, total.prompt_tokens - before.prompt_tokens);
  const completion = Math.max(0, total.completion_tokens - before.completion_tokens);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
