import { memo } from 'preact/compat';
import type { RefObject } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ChassisApiError, ChassisClient, webStorageTokenStore, type AgentSummary, type CompletionRequest, type CompletionStream, type SessionSummary } from '@agent-chassis/client';
import { applyEvent, emptyItem, itemsFromHistory, type ChatItem } from './chat-items.js';
import { explain, explainCode } from './errors.js';
import { MessageView, type MessageActions } from './message-view.js';
import { SharingPanel } from './sharing.js';
import { SignIn, type Auth, type PlaygroundConfig } from './sign-in.js';

const KEY_STORAGE = 'agent-chassis.api-key';
const PENDING_STORAGE = 'agent-chassis.pending-run';
const SESSION_STORAGE = 'agent-chassis.open-session';
const HISTORY_PAGE = 50;

/** A run whose answer was streaming when the page went away: resumed after a reload. */
interface PendingRun {
  runId: string;
  sessionId: string | null;
  text: string;
}

const readJson = <T,>(storage: Storage, key: string): T | null => {
  try {
    return JSON.parse(storage.getItem(key) ?? 'null') as T | null;
  } catch {
    return null;
  }
};

export function App() {
  const [config, setConfig] = useState<PlaygroundConfig | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [auth, setAuth] = useState<Auth | null>(null);
  const [restoring, setRestoring] = useState(true);
  const client = useMemo(
    () =>
      new ChassisClient({
        baseUrl: location.origin,
        // The login survives reloads (and refreshes itself); the API key lives only as long as this tab.
        tokens: webStorageTokenStore(localStorage),
        onTokensChange: (tokens) => {
          if (tokens === null) setAuth((current) => (current?.kind === 'account' ? null : current));
        },
      }),
    [],
  );

  useEffect(() => {
    void (async () => {
      try {
        const response = await fetch('/playground/config.json');
        if (!response.ok) throw await ChassisApiError.fromResponse(response);
        const loaded = (await response.json()) as PlaygroundConfig;
        setConfig(loaded);
        const saved = readJson<{ apiKey: string; userId?: string }>(sessionStorage, KEY_STORAGE);
        if (saved !== null && loaded.api_key) {
          client.setApiKey(saved.apiKey, saved.userId);
          setAuth({ kind: 'key', ...(saved.userId ? { userId: saved.userId } : {}) });
        } else if (loaded.accounts && client.authenticated) {
          const me = await client.me().catch(() => null);
          if (me !== null) setAuth({ kind: 'account', email: me.email });
        } else if (!loaded.api_key && !loaded.accounts) {
          setAuth({ kind: 'open' });
        }
      } catch (error) {
        setLoadError(explain(error));
      } finally {
        setRestoring(false);
      }
    })();
  }, [client]);

  const signedIn = (next: Auth, apiKey?: string) => {
    if (next.kind === 'key' && apiKey !== undefined) sessionStorage.setItem(KEY_STORAGE, JSON.stringify({ apiKey, userId: next.userId }));
    setAuth(next);
  };
  const signOut = async () => {
    sessionStorage.removeItem(KEY_STORAGE);
    sessionStorage.removeItem(PENDING_STORAGE);
    sessionStorage.removeItem(SESSION_STORAGE);
    client.setApiKey(undefined);
    await client.logout();
    setAuth(null);
  };

  if (loadError !== null) {
    return (
      <main class="sign-in">
        <h1>Agent Chassis playground</h1>
        <p class="alert" role="alert">
          {loadError}
        </p>
      </main>
    );
  }
  if (config === null || restoring) return <p class="loading">Loading…</p>;
  if (auth === null) return <SignIn client={client} config={config} onSignedIn={signedIn} />;
  return <Workspace client={client} config={config} auth={auth} onSignOut={() => void signOut()} />;
}

function Workspace({ client, config, auth, onSignOut }: { client: ChassisClient; config: PlaygroundConfig; auth: Auth; onSignOut: () => void }) {
  const [sessions, setSessions] = useState<SessionSummary[]>([]);
  const [sessionsCursor, setSessionsCursor] = useState<string | null>(null);
  const [sessionsNote, setSessionsNote] = useState<string | null>(null);
  const [sessionId, setSessionId] = useState<string | null>(null);
  // Read before the effect below writes the (still null) current session.
  const [reopen] = useState(() => sessionStorage.getItem(SESSION_STORAGE));
  useEffect(() => {
    if (sessionId === null) sessionStorage.removeItem(SESSION_STORAGE);
    else sessionStorage.setItem(SESSION_STORAGE, sessionId);
  }, [sessionId]);
  const [items, setItems] = useState<ChatItem[]>([]);
  const [earlier, setEarlier] = useState<number | null>(null);
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState('');
  const [agents, setAgents] = useState<AgentSummary[]>([]);
  const [agent, setAgent] = useState('');
  const [model, setModel] = useState('');
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);
  const [menuOpen, setMenuOpen] = useState(false);
  const stream = useRef<CompletionStream | null>(null);
  const list = useRef<HTMLDivElement>(null);

  const loadSessions = useCallback(
    async (cursor?: string) => {
      try {
        const page = await client.listSessions({ limit: 20, ...(cursor ? { cursor } : {}) });
        setSessions((current) => (cursor ? [...current, ...page.sessions] : page.sessions));
        setSessionsCursor(page.next_cursor);
        setSessionsNote(null);
      } catch (caught) {
        // A rate limit is already told where it matters (the answer); the list just stays as it was.
        if (caught instanceof ChassisApiError && caught.code === 'RATE_LIMITED') return;
        setSessionsNote(
          caught instanceof ChassisApiError && caught.code === 'AUTH_REQUIRED'
            ? 'This server has no sign-in (no API key, no accounts), so sessions have no owner and cannot be listed.'
            : explain(caught),
        );
      }
    },
    [client],
  );

  const scrollToEnd = () => requestAnimationFrame(() => list.current?.scrollTo({ top: list.current.scrollHeight }));

  const openSession = useCallback(
    async (id: string | null) => {
      setError(null);
      setSessionId(id);
      setMenuOpen(false);
      if (id === null) {
        setItems([]);
        setEarlier(null);
        return;
      }
      try {
        const page = await client.messages(id, { limit: HISTORY_PAGE });
        setItems(itemsFromHistory(page.messages));
        setEarlier(page.has_more ? (page.messages[0]?.seq ?? null) : null);
        scrollToEnd();
      } catch (caught) {
        // A new session exists only once its first turn is saved.
        if (caught instanceof ChassisApiError && caught.status === 404) setItems([]);
        else setError(explain(caught));
      }
    },
    [client],
  );

  // A stable callback for the memoised list, always calling the latest loadEarlier.
  const loadEarlierRef = useRef<() => Promise<void>>(async () => undefined);
  const onLoadEarlier = useCallback(() => void loadEarlierRef.current(), []);
  const loadEarlier = async () => {
    if (sessionId === null || earlier === null) return;
    try {
      const page = await client.messages(sessionId, { limit: HISTORY_PAGE, before: earlier });
      setItems((current) => [...itemsFromHistory(page.messages), ...current]);
      setEarlier(page.has_more ? (page.messages[0]?.seq ?? null) : null);
    } catch (caught) {
      setError(explain(caught));
    }
  };

  loadEarlierRef.current = loadEarlier;

  /** Reads a stream into the answer bubble `key`, one render per animation frame at most. */
  const consume = useCallback(
    async (source: CompletionStream, initial: ChatItem, userText: string) => {
      stream.current = source;
      setStreaming(true);
      setStatus('Answering…');
      const key = initial.key;
      let answer: ChatItem = initial;
      let frame = 0;
      const flush = () => {
        frame = 0;
        const latest = answer;
        setItems((current) => current.map((item) => (item.key === key ? latest : item)));
      };
      const update = (next: ChatItem) => {
        answer = next;
        if (frame === 0) frame = requestAnimationFrame(flush);
      };
      try {
        for await (const event of source) {
          update(applyEvent(answer, event));
          if (event.type === 'run_started') {
            const pending: PendingRun = { runId: event.run_id, sessionId: event.session_id, text: userText };
            sessionStorage.setItem(PENDING_STORAGE, JSON.stringify(pending));
          } else if (event.type === 'error') {
            setStatus(event.code === 'RUN_CANCELLED' ? 'Cancelled.' : 'The answer failed.');
            if (event.code !== 'RUN_CANCELLED') setError(explainCode(event.code, event.detail));
          } else if (event.type === 'done') {
            setStatus('Answer complete.');
            if (event.session_id !== null) setSessionId(event.session_id);
          }
        }
      } catch (caught) {
        const base = answer;
        const code = caught instanceof ChassisApiError ? caught.code : 'NETWORK_ERROR';
        const retryAfterSeconds = caught instanceof ChassisApiError ? caught.retryAfterSeconds : null;
        update({ ...base, streaming: false, error: { detail: caught instanceof ChassisApiError ? caught.detail : explain(caught), code, retryAfterSeconds } });
        setError(explain(caught));
        setStatus('The answer failed.');
      } finally {
        if (frame !== 0) cancelAnimationFrame(frame);
        answer = { ...answer, streaming: false };
        flush();
        sessionStorage.removeItem(PENDING_STORAGE);
        stream.current = null;
        setStreaming(false);
        scrollToEnd();
        void loadSessions();
      }
    },
    [loadSessions],
  );

  // First load: agents, sessions, and a run that was streaming when the page was reloaded.
  useEffect(() => {
    void client.listAgents().then(setAgents, () => setAgents([]));
    void loadSessions();
    const pending = readJson<PendingRun>(sessionStorage, PENDING_STORAGE);
    if (pending === null) {
      // A reload keeps the conversation that was open.
      if (reopen !== null) void openSession(reopen);
      return;
    }
    void (async () => {
      if (pending.sessionId !== null) await openSession(pending.sessionId);
      const run = await client.run(pending.runId).catch(() => null);
      // A run waiting for an approval is live too: its stream shows the approval and goes on after it.
      if (run === null || (run.status !== 'running' && run.status !== 'waiting_approval')) {
        // It ended while the page was away: the saved history already has it.
        sessionStorage.removeItem(PENDING_STORAGE);
        if (pending.sessionId !== null) await openSession(pending.sessionId);
        return;
      }
      const user = emptyItem('user', pending.text);
      const answer = { ...emptyItem('assistant'), streaming: true, runId: pending.runId };
      setItems((current) => [...current, user, answer]);
      scrollToEnd();
      await consume(client.resume(pending.runId), answer, pending.text);
    })();
  }, [client, consume, loadSessions, openSession, reopen]);

  const send = async (message: string) => {
    if (streaming) return;
    setError(null);
    const user = emptyItem('user', message);
    const answer = { ...emptyItem('assistant'), streaming: true };
    setItems((current) => [...current, user, answer]);
    scrollToEnd();
    const body: CompletionRequest = { message };
    if (sessionId !== null) body.session_id = sessionId;
    else body.metadata = { title: message.slice(0, 80) };
    if (agent !== '') body.agent = agent;
    else if (model.trim() !== '') body.model = model.trim();
    await consume(client.stream(body), answer, message);
  };

  const actions: MessageActions = useMemo(
    () => ({
      decide(runId, approvalId, decision) {
        setItems((current) =>
          current.map((item) => (item.runId === runId ? { ...item, approvals: item.approvals.map((a) => (a.approvalId === approvalId ? { ...a, decision: 'pending' as const } : a)) } : item)),
        );
        client.decideApproval(runId, approvalId, decision).then(
          () =>
            setItems((current) =>
              current.map((item) => (item.runId === runId ? { ...item, approvals: item.approvals.map((a) => (a.approvalId === approvalId ? { ...a, decision } : a)) } : item)),
            ),
          (caught: unknown) => {
            setError(explain(caught));
            setItems((current) =>
              current.map((item) => (item.runId === runId ? { ...item, approvals: item.approvals.map((a) => (a.approvalId === approvalId ? { ...a, decision: undefined } : a)) } : item)),
            );
          },
        );
      },
    }),
    [client],
  );

  const remove = async (id: string) => {
    if (confirmDelete !== id) {
      setConfirmDelete(id);
      return;
    }
    setConfirmDelete(null);
    try {
      await client.deleteSession(id);
      setSessions((current) => current.filter((session) => session.session_id !== id));
      if (sessionId === id) await openSession(null);
      setStatus('Session deleted.');
    } catch (caught) {
      setError(explain(caught));
    }
  };

  const who = auth.kind === 'account' ? auth.email : auth.kind === 'key' ? `API key${auth.userId ? ` as ${auth.userId}` : ''}` : 'open server';
  const title = (session: SessionSummary) => {
    const metadataTitle = session.metadata?.title;
    return typeof metadataTitle === 'string' && metadataTitle !== '' ? metadataTitle : `Session ${session.session_id.slice(0, 8)}`;
  };

  return (
    <div class="layout">
      <header class="top">
        <button type="button" class="menu secondary" aria-expanded={menuOpen} aria-controls="sidebar" onClick={() => setMenuOpen(!menuOpen)}>
          Sessions
        </button>
        <h1>Agent Chassis</h1>
        <div class="pickers">
          {agents.length > 0 && (
            <label>
              Agent{' '}
              <select data-testid="agent-select" value={agent} onChange={(e) => setAgent(e.currentTarget.value)}>
                <option value="">(none: pick a model)</option>
                {agents.map((entry) => (
                  <option key={entry.name} value={entry.name} title={entry.description}>
                    {entry.name}
                  </option>
                ))}
              </select>
            </label>
          )}
          <label>
            Model{' '}
            <input data-testid="model-input" value={model} placeholder={config.default_model} disabled={agent !== ''} onInput={(e) => setModel(e.currentTarget.value)} />
          </label>
        </div>
        <span class="who" data-testid="signed-in-as">
          {who}
        </span>
        {auth.kind !== 'open' && (
          <button type="button" class="secondary" data-testid="sign-out" onClick={onSignOut}>
            Sign out
          </button>
        )}
      </header>
      <nav id="sidebar" class={`sidebar ${menuOpen ? 'open' : ''}`} aria-label="Sessions">
        <button type="button" data-testid="new-chat" onClick={() => void openSession(null)}>
          New chat
        </button>
        {sessionsNote !== null && <p class="hint">{sessionsNote}</p>}
        <ul data-testid="session-list" class="session-list">
          {sessions.map((session) => (
            <li key={session.session_id} class={session.session_id === sessionId ? 'current' : ''} data-session-id={session.session_id}>
              <button type="button" class="link open-session" aria-current={session.session_id === sessionId} onClick={() => void openSession(session.session_id)}>
                <span class="title">{title(session)}</span>
                <span class="meta">
                  {session.message_count} messages · {new Date(session.updated_at).toLocaleString()}
                </span>
              </button>
              <button type="button" class="danger small" data-testid="delete-session" aria-label={`Delete ${title(session)}`} onClick={() => void remove(session.session_id)}>
                {confirmDelete === session.session_id ? 'Really delete?' : 'Delete'}
              </button>
            </li>
          ))}
        </ul>
        {sessionsCursor !== null && (
          <button type="button" class="secondary" onClick={() => void loadSessions(sessionsCursor)}>
            More sessions
          </button>
        )}
      </nav>
      <main class="chat" aria-label="Conversation">
        {error !== null && (
          <div class="alert" role="alert" data-testid="error">
            <span>{error}</span>
            <button type="button" class="link" aria-label="Dismiss the error" onClick={() => setError(null)}>
              Dismiss
            </button>
          </div>
        )}
        {sessionId !== null && auth.kind !== 'open' && <SharingPanel client={client} sessionId={sessionId} />}
        <MessageList listRef={list} items={items} hasEarlier={earlier !== null} isNew={sessionId === null} actions={actions} onLoadEarlier={onLoadEarlier} />
        <p class="visually-hidden" role="status" aria-live="polite">
          {status}
        </p>
        <Composer streaming={streaming} onSend={(message) => void send(message)} onCancel={() => void stream.current?.cancel().catch((caught: unknown) => setError(explain(caught)))} />
      </main>
    </div>
  );
}

/** The conversation. Memoised: typing in the composer or changing a picker does not touch 1,000 messages. */
const MessageList = memo(function MessageList({
  listRef,
  items,
  hasEarlier,
  isNew,
  actions,
  onLoadEarlier,
}: {
  listRef: RefObject<HTMLDivElement | null>;
  items: ChatItem[];
  hasEarlier: boolean;
  isNew: boolean;
  actions: MessageActions;
  onLoadEarlier: () => void;
}) {
  return (
    <div class="messages" ref={listRef} data-testid="messages">
      {hasEarlier && (
        <button type="button" class="secondary load-earlier" data-testid="load-earlier" onClick={onLoadEarlier}>
          Load earlier messages
        </button>
      )}
      {items.length === 0 && <p class="empty">Ask something to start{isNew ? ' a new session' : ''}.</p>}
      {items.map((item) => (
        <MessageView key={item.key} item={item} actions={actions} />
      ))}
    </div>
  );
});

/** The message box keeps its own text, so each keystroke renders only itself. */
function Composer({ streaming, onSend, onCancel }: { streaming: boolean; onSend: (message: string) => void; onCancel: () => void }) {
  const [text, setText] = useState('');
  const submit = (event?: Event) => {
    event?.preventDefault();
    const message = text.trim();
    if (message === '' || streaming) return;
    setText('');
    onSend(message);
  };
  return (
    <form class="composer" onSubmit={submit}>
      <label for="message" class="visually-hidden">
        Message
      </label>
      <textarea
        id="message"
        data-testid="message-input"
        rows={2}
        placeholder="Message (Enter sends, Shift+Enter for a new line)"
        value={text}
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          }
        }}
      />
      {streaming ? (
        <button type="button" class="danger" data-testid="cancel" onClick={onCancel}>
          Cancel
        </button>
      ) : (
        <button type="submit" data-testid="send" disabled={text.trim() === ''}>
          Send
        </button>
      )}
    </form>
  );
}
