import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { unauthorized } from '../errors.js';

import type { Principal } from '../principal.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes OpenAI clients call: they can only send the API key as `Authorization: Bearer <key>`. */
    bearerApiKey?: boolean;
  }
}

/** Checks a Bearer token (the accounts module provides it when user auth is on). */
export type BearerVerifier = (token: string) => Promise<Principal>;

const MAX_USER_ID_LENGTH = 256;

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Constant-time comparison: hashing first gives equal lengths, which timingSafeEqual requires. */
function sameSecret(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Node hands header bytes over as latin1 (one character per byte). Access lists arrive as JSON,
 * which is UTF-8: decode the header's bytes as UTF-8 too, so "José" sent either way is the same id.
 * Bytes that are not UTF-8 are refused rather than guessed at.
 */
function decodeUtf8Header(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\u0000-\u007f]/.test(value)) return value;
  try {
    return utf8.decode(Buffer.from(value, 'latin1'));
  } catch {
    throw unauthorized('X-User-ID must be UTF-8 text');
  }
}

function userIdHeader(request: FastifyRequest): string | null {
  const raw = header(request, 'x-user-id');
  const value = raw === undefined ? undefined : decodeUtf8Header(raw).trim();
  if (!value) return null;
  if (value.length > MAX_USER_ID_LENGTH || /[\u0000-\u001f\u007f-\u009f]/.test(value)) {
    throw unauthorized(`X-User-ID must be 1-${MAX_USER_ID_LENGTH} printable characters`);
  }
  return value;
}

/**
 * A request's principal sits on the request itself: a WeakMap beside it cost 1-1.6 % of a stateless
 * request (a hash lookup twice, and an ephemeron for every GC to walk).
 */
const PRINCIPAL = Symbol('principal');
type Resolved = FastifyRequest & { [PRINCIPAL]?: Promise<Principal> };

/**
 * SPEC §3: X-API-Key (then X-User-ID names the end user), or a Bearer JWT (X-User-ID ignored), or,
 * when neither is configured, an open API where X-User-ID is taken as given.
 */
export function createIdentityResolver(config: Config, getBearerVerifier: () => BearerVerifier | undefined) {
  const expectedKey = config.chassisApiKey === undefined ? undefined : digest(config.chassisApiKey);
  const keyIdentity = config.chassisApiKey === undefined ? '' : `api-key:${digest(config.chassisApiKey).toString('hex').slice(0, 12)}`;

  // Resolved once per request: the general rate limit (a hook) and the route both ask for it.
  function resolveIdentity(request: FastifyRequest): Promise<Principal> {
    return ((request as Resolved)[PRINCIPAL] ??= resolve(request));
  }
  /** For the request's log line: who made it, if a route or hook resolved it (and it was allowed). */
  resolveIdentity.known = async (request: FastifyRequest): Promise<Principal | undefined> => (request as Resolved)[PRINCIPAL]?.catch(() => undefined);
  return resolveIdentity;

  async function resolve(request: FastifyRequest): Promise<Principal> {
    const verifier = getBearerVerifier();
    const secured = expectedKey !== undefined || verifier !== undefined;
    const apiKey = header(request, 'x-api-key');
    if (apiKey !== undefined && expectedKey !== undefined) {
      if (!sameSecret(apiKey, expectedKey)) throw unauthorized('Invalid API key');
      return { userId: userIdHeader(request) ?? keyIdentity, via: 'api_key' };
    }
    const authorization = header(request, 'authorization');
    if (authorization !== undefined && expectedKey !== undefined && request.routeOptions.config?.bearerApiKey === true) {
      const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
      if (token !== undefined && sameSecret(token, expectedKey)) return { userId: userIdHeader(request) ?? keyIdentity, via: 'api_key' };
      // Not the key: an access token when accounts are on, otherwise a wrong key.
      if (verifier === undefined) throw unauthorized('Invalid API key');
    }
    if (authorization !== undefined && verifier !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!match) throw unauthorized('Authorization must be "Bearer <token>"');
      return verifier(match[1]!);
    }
    if (secured) {
      throw unauthorized(
        expectedKey !== undefined && verifier !== undefined
          ? 'Send an X-API-Key header or an Authorization: Bearer token'
          : expectedKey !== undefined
            ? 'Missing X-API-Key header'
            : 'Missing Authorization: Bearer token',
      );
    }
    return { userId: userIdHeader(request), via: 'open' };
  }
}

export type IdentityResolver = ReturnType<typeof createIdentityResolver>;
