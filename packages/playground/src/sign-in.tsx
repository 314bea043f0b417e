import { useState } from 'preact/hooks';
import { ChassisApiError, type ChassisClient } from '@agent-chassis/client';
import { explain } from './errors.js';

export interface PlaygroundConfig {
  accounts: boolean;
  api_key: boolean;
  dev_outbox: boolean;
  persistence: boolean;
  default_model: string;
}

export type Auth = { kind: 'key'; userId?: string } | { kind: 'account'; email: string } | { kind: 'open' };

type Mode = 'login' | 'register' | 'verify';

/** Sign in with the API key, or with an account: log in, register, enter the mailed code. */
export function SignIn({ client, config, onSignedIn }: { client: ChassisClient; config: PlaygroundConfig; onSignedIn: (auth: Auth, apiKey?: string) => void }) {
  const [apiKey, setApiKey] = useState('');
  const [userId, setUserId] = useState('');
  const [mode, setMode] = useState<Mode>('login');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const attempt = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (caught) {
      setError(explain(caught));
    } finally {
      setBusy(false);
    }
  };

  const useKey = (event: Event) => {
    event.preventDefault();
    void attempt(async () => {
      client.setApiKey(apiKey.trim(), userId.trim() || undefined);
      try {
        // Any authenticated call proves the key.
        await client.listTools();
      } catch (caught) {
        client.setApiKey(undefined);
        throw caught;
      }
      onSignedIn({ kind: 'key', ...(userId.trim() ? { userId: userId.trim() } : {}) }, apiKey.trim());
    });
  };

  const submitAccount = (event: Event) => {
    event.preventDefault();
    void attempt(async () => {
      if (mode === 'register') {
        await client.register(email, password);
        setNotice(`We sent a 6-digit code to ${email}. Enter it below.`);
        setMode('verify');
      } else if (mode === 'verify') {
        await client.verifyEmail(email, code.trim());
        setNotice('Email verified. You can log in now.');
        setCode('');
        setMode('login');
      } else {
        try {
          await client.login(email, password);
        } catch (caught) {
          if (caught instanceof ChassisApiError && caught.status === 403) {
            setNotice('Your email is not verified yet: enter the code we mailed you.');
            setMode('verify');
            return;
          }
          throw caught;
        }
        onSignedIn({ kind: 'account', email });
      }
    });
  };

  const resend = () =>
    void attempt(async () => {
      await client.resendVerification(email);
      setNotice(`If ${email} has an account waiting for verification, a new code is on its way.`);
    });

  return (
    <main class="sign-in" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Agent Chassis playground</h1>
      {error !== null && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
      {notice !== null && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {config.api_key && (
        <form class="card" onSubmit={useKey} aria-labelledby="key-title">
          <h2 id="key-title">Sign in with an API key</h2>
          <label for="api-key">API key</label>
          <input id="api-key" data-testid="api-key" type="password" autocomplete="off" required value={apiKey} onInput={(e) => setApiKey(e.currentTarget.value)} />
          <label for="user-id">User ID (optional: the end user you act for)</label>
          <input id="user-id" data-testid="user-id" type="text" autocomplete="off" value={userId} onInput={(e) => setUserId(e.currentTarget.value)} />
          <button type="submit" data-testid="api-key-submit" disabled={busy || apiKey.trim() === ''}>
            Use this key
          </button>
        </form>
      )}
      {config.accounts && (
        <form class="card" onSubmit={submitAccount} aria-labelledby="account-title">
          <h2 id="account-title">{mode === 'register' ? 'Create an account' : mode === 'verify' ? 'Verify your email' : 'Log in'}</h2>
          <label for="email">Email</label>
          <input id="email" data-testid="email" type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          {mode !== 'verify' && (
            <>
              <label for="password">Password{mode === 'register' ? ' (at least 8 characters, a letter and a digit)' : ''}</label>
              <input
                id="password"
                data-testid="password"
                type="password"
                autocomplete={mode === 'register' ? 'new-password' : 'current-password'}
                required
                value={password}
                onInput={(e) => setPassword(e.currentTarget.value)}
              />
            </>
          )}
          {mode === 'verify' && (
            <>
              <label for="code">6-digit code from the mail</label>
              <input id="code" data-testid="code" inputMode="numeric" autocomplete="one-time-code" required value={code} onInput={(e) => setCode(e.currentTarget.value)} />
              {config.dev_outbox && (
                <p class="hint" data-testid="dev-outbox-hint">
                  This server sends no real mail (SMTP_HOST is not set): the code is in the server's log, on the line that starts with <code>DEV OUTBOX</code>.
                </p>
              )}
            </>
          )}
          <button type="submit" data-testid="account-submit" disabled={busy}>
            {mode === 'register' ? 'Create account' : mode === 'verify' ? 'Verify' : 'Log in'}
          </button>
          <div class="links">
            {mode !== 'login' && (
              <button type="button" class="link" onClick={() => setMode('login')}>
                Back to log in
              </button>
            )}
            {mode !== 'register' && (
              <button type="button" class="link" data-testid="to-register" onClick={() => setMode('register')}>
                Create an account
              </button>
            )}
            {mode === 'login' && (
              <button type="button" class="link" onClick={() => setMode('verify')}>
                I have a code
              </button>
            )}
            {mode === 'verify' && (
              <button type="button" class="link" disabled={busy || email === ''} onClick={resend}>
                Send a new code
              </button>
            )}
          </div>
        </form>
      )}
    </main>
  );
}
