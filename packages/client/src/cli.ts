#!/usr/bin/env node
// agent-chassis: talk to an Agent Chassis server from a terminal, through the same client as the
// playground. `chat` streams answers (tool calls shown; Ctrl-C cancels the run, not the program);
// `runs <id>` shows a run and can follow it.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ChassisApiError } from './errors.js';
import { ChassisClient, type CompletionRequest } from './client.js';
import type { CompletionStream } from './stream.js';
import type { StreamEvent } from './events.js';

const USAGE = `Usage:
  agent-chassis chat [message] [--session ID] [--agent NAME | --model NAME] [--system TEXT]
      With a message: one turn, then exit. Without: an interactive chat (Ctrl-C cancels the
      running answer; Ctrl-C at the prompt or Ctrl-D quits).
  agent-chassis runs <run_id> [--follow]
      A run's status; --follow replays its events and follows it to the end.

Options: --url (default $CHASSIS_URL or http://localhost:8000), --api-key ($CHASSIS_API_KEY),
         --user ($CHASSIS_USER_ID: the end user you act for, with an API key)`;

const tty = process.stdout.isTTY === true;
const dim = (text: string) => (tty ? `\x1b[2m${text}\x1b[22m` : text);
const bold = (text: string) => (tty ? `\x1b[1m${text}\x1b[22m` : text);

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function describeError(error: unknown): string {
  if (error instanceof ChassisApiError) {
    return `error: ${error.detail} (${error.code}${error.status ? `, HTTP ${error.status}` : ''})${error.retryAfterSeconds !== null ? `; retry in ${error.retryAfterSeconds} s` : ''}`;
  }
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `error: ${error instanceof Error ? error.message : String(error)}${cause}`;
}

/** Prints one event as a terminal line (or part of one); returns the session id when a run ends. */
function printEvent(event: StreamEvent, state: { inReasoning: boolean; atLineStart: boolean }): void {
  const write = (text: string) => {
    process.stdout.write(text);
    state.atLineStart = text.endsWith('\n');
  };
  const newline = () => {
    if (!state.atLineStart) write('\n');
  };
  if (event.type !== 'reasoning' && state.inReasoning) {
    state.inReasoning = false;
    newline();
  }
  switch (event.type) {
    case 'content':
      write(event.content);
      break;
    case 'reasoning':
      if (!state.inReasoning) {
        newline();
        write(dim('thinking: '));
        state.inReasoning = true;
      }
      write(dim(event.content));
      break;
    case 'tool_call':
      newline();
      write(`${bold('tool')} ${event.name}(${event.arguments})\n`);
      break;
    case 'tool_result':
      write(`  ${dim('→')} ${event.result.length > 500 ? `${event.result.slice(0, 500)}…` : event.result}\n`);
      break;
    case 'approval_required':
      newline();
      write(
        `${bold('approval needed')} ${event.name}(${event.arguments}): decide in the playground, or POST /api/v1/agent/runs/${event.run_id ?? '<run_id>'}/approvals/${event.approval_id} {"decision":"approve"|"deny"}\n`,
      );
      break;
    case 'approval_decided':
      write(`  ${dim(event.decision === 'approve' ? 'approved' : `denied${event.reason ? `: ${event.reason}` : ''}`)}\n`);
      break;
    case 'done':
      newline();
      write(dim(`[${event.stop_reason} · ${event.usage.prompt_tokens} prompt + ${event.usage.completion_tokens} completion tokens · run ${event.run_id}${event.session_id ? ` · session ${event.session_id}` : ''}]`) + '\n');
      break;
    case 'error':
      newline();
      process.stderr.write(event.code === 'RUN_CANCELLED' ? '[cancelled]\n' : `error: ${event.detail} (${event.code})\n`);
      break;
    default:
      break;
  }
}

/** Plays one stream to its end; SIGINT while it runs cancels the run on the server. */
async function play(stream: CompletionStream): Promise<{ sessionId: string | null; failed: boolean }> {
  const state = { inReasoning: false, atLineStart: true };
  let failed = false;
  const onInterrupt = () => {
    process.stderr.write('\n[cancelling…]\n');
    stream.cancel().catch((error: unknown) => process.stderr.write(`${describeError(error)}\n`));
  };
  process.on('SIGINT', onInterrupt);
  try {
    for await (const event of stream) {
      printEvent(event, state);
      if (event.type === 'error') failed = true;
    }
  } catch (error) {
    if (!state.atLineStart) process.stdout.write('\n');
    process.stderr.write(`${describeError(error)}\n`);
    failed = true;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
  return { sessionId: stream.sessionId, failed };
}

async function chat(client: ChassisClient, values: Record<string, unknown>, message: string | undefined): Promise<number> {
  let sessionId = typeof values.session === 'string' ? values.session : undefined;
  const base: Omit<CompletionRequest, 'message'> = {};
  if (typeof values.agent === 'string') base.agent = values.agent;
  if (typeof values.model === 'string') base.model = values.model;
  if (typeof values.system === 'string') base.system_prompt = values.system;
  const turn = async (text: string) => {
    const result = await play(client.stream({ ...base, message: text, ...(sessionId ? { session_id: sessionId } : {}) }));
    // Only a turn that ended well surely has a session (a new one exists once its first turn is saved).
    if (!result.failed) sessionId = result.sessionId ?? sessionId;
    return result.failed;
  };
  if (message !== undefined) return (await turn(message)) ? 1 : 0;

  const lines = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
  process.stdout.write(dim(`Connected to ${client.baseUrl}. Type a message; Ctrl-C cancels an answer, Ctrl-D quits.`) + '\n');
  // At the prompt, Ctrl-C quits (while an answer runs, play() takes SIGINT instead).
  const quit = () => {
    process.stdout.write('\n');
    lines.close();
  };
  lines.on('SIGINT', quit);
  process.on('SIGINT', quit);
  const prompt = () => {
    lines.setPrompt(bold('you> '));
    lines.prompt();
  };
  prompt();
  for await (const line of lines) {
    const text = line.trim();
    if (text === '') {
      prompt();
      continue;
    }
    process.off('SIGINT', quit);
    lines.pause();
    await turn(text);
    lines.resume();
    process.on('SIGINT', quit);
    prompt();
  }
  return 0;
}

async function runs(client: ChassisClient, runId: string, follow: boolean): Promise<number> {
  if (follow) {
    const result = await play(client.resume(runId));
    if (result.failed) return 1;
  }
  const status = await client.run(runId);
  const usage = status.usage === null ? '' : ` · ${status.usage.prompt_tokens} prompt + ${status.usage.completion_tokens} completion tokens`;
  process.stdout.write(
    `run ${status.run_id}: ${status.status}${status.stop_reason ? ` (${status.stop_reason})` : ''}${usage} · ${status.event_count} events · ${status.duration_ms} ms${status.session_id ? ` · session ${status.session_id}` : ''}\n`,
  );
  if (status.error !== null) process.stdout.write(`  ${status.error.code}: ${status.error.detail}\n`);
  return status.status === 'failed' ? 1 : 0;
}

const OPTIONS = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  user: { type: 'string' },
  session: { type: 'string' },
  agent: { type: 'string' },
  model: { type: 'string' },
  system: { type: 'string' },
  follow: { type: 'boolean', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * `--session ID` as `--session=ID`: an option that takes a value takes the next word whatever it
 * starts with. Session ids are base64url, so one in 64 starts with "-", which parseArgs would
 * otherwise refuse as ambiguous (and a system prompt may start with one too).
 */
function joinOptionValues(args: readonly string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    const name = arg.startsWith('--') ? arg.slice(2) : '';
    const takesValue = Object.hasOwn(OPTIONS, name) && OPTIONS[name as keyof typeof OPTIONS].type === 'string';
    if (takesValue && index + 1 < args.length) joined.push(`${arg}=${args[++index]!}`);
    else joined.push(arg);
  }
  return joined;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ args: joinOptionValues(process.argv.slice(2)), allowPositionals: true, options: OPTIONS });
  const [command, ...rest] = positionals;
  if (values.help === true || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && values.help !== true ? 2 : 0;
  }
  if (values.agent !== undefined && values.model !== undefined) fail('Use --agent or --model, not both', 2);
  const client = new ChassisClient({
    baseUrl: values.url ?? process.env.CHASSIS_URL ?? 'http://localhost:8000',
    apiKey: values['api-key'] ?? process.env.CHASSIS_API_KEY,
    userId: values.user ?? process.env.CHASSIS_USER_ID,
  });
  if (command === 'chat') return chat(client, values, rest.length > 0 ? rest.join(' ') : undefined);
  if (command === 'runs') {
    if (rest.length !== 1) fail('Usage: agent-chassis runs <run_id> [--follow]', 2);
    return runs(client, rest[0]!, values.follow === true);
  }
  fail(`Unknown command "${command}"\n\n${USAGE}`, 2);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => fail(describeError(error)),
);
