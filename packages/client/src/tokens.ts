/** A login: the server's tokens plus when the access token expires (ms since the epoch). */
export interface StoredTokens {
  access_token: string;
  refresh_token: string;
  expires_at: number;
}

/** Where the client keeps its login. Swap it to keep a login across reloads or processes. */
export interface TokenStore {
  get(): StoredTokens | null;
  set(tokens: StoredTokens | null): void;
}

export function memoryTokenStore(initial: StoredTokens | null = null): TokenStore {
  let tokens = initial;
  return {
    get: () => tokens,
    set: (next) => {
      tokens = next;
    },
  };
}

/** The part of the Web Storage API this needs (window.localStorage, sessionStorage). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Keeps the login in Web Storage, e.g. `webStorageTokenStore(localStorage)` to stay logged in across reloads. */
export function webStorageTokenStore(storage: KeyValueStorage, key = 'agent-chassis.tokens'): TokenStore {
  return {
    get() {
      try {
        const parsed = JSON.parse(storage.getItem(key) ?? 'null') as StoredTokens | null;
        return parsed !== null && typeof parsed.refresh_token === 'string' ? parsed : null;
      } catch {
        return null;
      }
    },
    set(tokens) {
      if (tokens === null) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(tokens));
    },
  };
}
