import { Type } from 'typebox';
import type { AgentDefinition } from '../../src/agents/catalog.js';
import { defineTool } from '../../src/tools/index.js';

/** A server tool that counts its runs: proves from outside whether the loop really ran it. */
export function countingTool() {
  const counted = { runs: 0 };
  const tool = defineTool({
    name: 'counter',
    description: 'Counts how often it ran',
    parameters: Type.Object({}),
    run() {
      counted.runs++;
      return `ran ${counted.runs}`;
    },
  });
  return { tool, counted };
}

/** A catalog agent with its own instructions, upstream model, temperature and the counting tool. */
export const writerAgent: AgentDefinition = {
  name: 'writer',
  description: 'Writes',
  instructions: 'You are a careful writer.',
  model: 'writer-upstream-model',
  temperature: 0.2,
  tools: ['counter'],
  approval: [],
};
