// A loopback stand-in for Google's JWKS endpoint plus a signer of Google-style ID tokens.
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';

export const GOOGLE_CLIENT_ID = 'test-client.apps.googleusercontent.com';
export const GOOGLE_ISSUER = 'https://accounts.google.com';

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export interface GoogleClaims {
  sub?: string;
  email?: string;
  email_verified?: boolean | string;
  name?: string;
  aud?: string | string[];
  /** Authorized party; only put in the token when given. */
  azp?: string;
  iss?: string;
  exp?: number;
  iat?: number;
}

export interface FakeGoogle {
  url: string;
  /** JWKS requests served. */
  hits: number;
  /** 'up', 'down' (500), 'hang' (never answers). */
  mode: 'up' | 'down' | 'hang';
  /** A valid token for these claims (defaults: a verified user), signed with the newest published key. */
  token(claims?: GoogleClaims, options?: { kid?: string; key?: CryptoKey }): Promise<string>;
  /** Publish a new key (rotation); later tokens are signed with it. */
  rotate(): Promise<string>;
  /** A key pair that is not published, for bad-signature tokens. */
  strangerKey(): Promise<CryptoKey>;
  close(): Promise<void>;
}

let keyCounter = 0;

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `key-${++keyCounter}-${Date.now()}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, jwk };
}

export async function startFakeGoogle(): Promise<FakeGoogle> {
  const keys: SigningKey[] = [await newKey()];
  const hanging = new Set<import('node:http').ServerResponse>();
  const state = { hits: 0, mode: 'up' as FakeGoogle['mode'] };
  const server: Server = createServer((request, response) => {
    state.hits++;
    if (state.mode === 'hang') {
      hanging.add(response);
      return;
    }
    if (state.mode === 'down') {
      response.writeHead(500).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: keys.map((key) => key.jwk) }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/oauth2/v3/certs`,
    get hits() {
      return state.hits;
    },
    get mode() {
      return state.mode;
    },
    set mode(mode) {
      state.mode = mode;
    },
    async token(claims = {}, options = {}) {
      const now = Math.floor(Date.now() / 1000);
      const key = keys.at(-1)!;
      const sub = claims.sub ?? `google-${Math.random().toString(36).slice(2)}`;
      return new SignJWT({ email: claims.email ?? `${sub}@gmail.test`, email_verified: claims.email_verified ?? true, name: claims.name ?? 'Test User', ...(claims.azp === undefined ? {} : { azp: claims.azp }) })
        .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? key.kid, typ: 'JWT' })
        .setSubject(sub)
        .setIssuer(claims.iss ?? GOOGLE_ISSUER)
        .setAudience(claims.aud ?? GOOGLE_CLIENT_ID)
        .setIssuedAt(claims.iat ?? now)
        .setExpirationTime(claims.exp ?? now + 3600)
        .sign(options.key ?? key.privateKey);
    },
    async rotate() {
      const key = await newKey();
      keys.push(key);
      return key.kid;
    },
    async strangerKey() {
      return (await newKey()).privateKey;
    },
    async close() {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
