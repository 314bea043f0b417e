import { memo } from 'preact/compat';
import { useMemo } from 'preact/hooks';
import { prettyJson, type ChatItem } from './chat-items.js';
import { explainCode } from './errors.js';
import { renderMarkdown } from './markdown.js';

const ROLE_NAMES: Record<ChatItem['role'], string> = { user: 'You', assistant: 'Assistant', system: 'System', tool: 'Tool' };

export interface MessageActions {
  decide(runId: string, approvalId: string, decision: 'approve' | 'deny'): void;
}

/** One message. Memoised: while an answer streams, only its own bubble renders again. */
export const MessageView = memo(function MessageView({ item, actions }: { item: ChatItem; actions: MessageActions }) {
  // markdown-it escapes any HTML in the text (html: false), so this is the only innerHTML on the page.
  const html = useMemo(() => (item.role === 'assistant' ? renderMarkdown(item.content) : ''), [item.role, item.content]);
  return (
    <article class={`message ${item.role}`} data-testid="message" data-role={item.role} aria-busy={item.streaming}>
      <h3 class="who">{ROLE_NAMES[item.role]}</h3>
      {item.reasoning !== '' && (
        <details class="reasoning" data-testid="reasoning">
          <summary>Reasoning</summary>
          <pre>{item.reasoning}</pre>
        </details>
      )}
      {item.toolCalls.map((call) => (
        <details class="tool-call" data-testid="tool-call" key={call.id} open>
          <summary>
            Tool <code>{call.name}</code>{' '}
            {call.result === undefined ? (
              <span class="pending">{item.approvals.some((approval) => approval.toolCallId === call.id && approval.decision === undefined) ? 'waiting for your decision' : 'running…'}</span>
            ) : null}
          </summary>
          <div class="tool-body">
            <span class="label">Arguments</span>
            <pre data-testid="tool-arguments">{prettyJson(call.arguments)}</pre>
            {call.result !== undefined && (
              <>
                <span class="label">Result</span>
                <pre data-testid="tool-result">{call.result}</pre>
              </>
            )}
          </div>
        </details>
      ))}
      {item.approvals.map((approval) => (
        <div class="approval" key={approval.approvalId} role="group" aria-label={`Approval for ${approval.name}`}>
          <p>
            The agent wants to run <code>{approval.name}</code> with <code>{approval.arguments}</code>
            {approval.decision === undefined ? `. Decide before ${new Date(approval.expiresAt).toLocaleTimeString()}.` : ''}
          </p>
          {approval.decision === undefined || approval.decision === 'pending' ? (
            <div class="row">
              <button type="button" data-testid="approve" disabled={approval.decision === 'pending' || item.runId === undefined} onClick={() => actions.decide(item.runId!, approval.approvalId, 'approve')}>
                Approve
              </button>
              <button type="button" class="secondary" data-testid="deny" disabled={approval.decision === 'pending' || item.runId === undefined} onClick={() => actions.decide(item.runId!, approval.approvalId, 'deny')}>
                Deny
              </button>
            </div>
          ) : (
            <p class="decided">{approval.decision === 'approve' ? 'Approved' : 'Denied'}</p>
          )}
        </div>
      ))}
      {item.role === 'assistant' ? (
        <div class="content markdown" dangerouslySetInnerHTML={{ __html: html }} />
      ) : (
        <div class="content plain">{item.content}</div>
      )}
      {item.streaming && item.content === '' && item.toolCalls.length === 0 && <p class="typing">Thinking…</p>}
      {item.error !== undefined && (
        <p class={item.error.code === 'RUN_CANCELLED' ? 'cancelled' : 'error-text'} data-testid="message-error">
          {explainCode(item.error.code, item.error.detail, item.error.retryAfterSeconds ?? null)}
        </p>
      )}
      {item.usage !== undefined && (
        <p class="usage" data-testid="usage">
          Tokens: {item.usage.prompt_tokens} prompt + {item.usage.completion_tokens} completion = {item.usage.total_tokens}
        </p>
      )}
    </article>
  );
});
