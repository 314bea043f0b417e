import { defineTool, type Tool } from '../../src/tools/types.js';
import { Type } from '../../src/json-schema.js';
import { post } from './app.js';

/** A tool that needs approval and records every call it really ran: proof that a denied call never ran. */
export function recordingTool(name = 'delete_file', needsApproval = true): Tool & { calls: Array<Record<string, unknown>> } {
  const calls: Array<Record<string, unknown>> = [];
  const tool = defineTool({
    name,
    description: `Records its calls (${name})`,
    parameters: Type.Object({ path: Type.String() }),
    needsApproval,
    run(args) {
      calls.push(args);
      return `ran ${name} on ${args.path}`;
    },
  });
  return Object.assign(tool, { calls });
}

export const decide = (url: string, runId: string, approvalId: string, body: unknown, headers: Record<string, string> = {}) =>
  post(`${url}/api/v1/agent/runs/${runId}/approvals/${approvalId}`, body, headers);

export const getJson = async (url: string, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { headers });
  return { status: response.status, body: (await response.json()) as any };
};

/** Polls GET /runs/{id} until `done(status)` (no timing asserted: only a bound so a broken run fails). */
export async function waitForRun(url: string, runId: string, done: (body: any) => boolean, headers: Record<string, string> = {}, timeoutMs = 15_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await getJson(`${url}/api/v1/agent/runs/${runId}`, headers);
    if (done(body)) return body;
    if (Date.now() > deadline) throw new Error(`run ${runId} did not get there: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const finished = (body: any) => ['completed', 'failed', 'cancelled'].includes(body.status);
