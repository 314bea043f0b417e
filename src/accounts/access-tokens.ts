import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';

export const TOKEN_ISSUER = 'agent-chassis';
export const TOKEN_AUDIENCE = 'agent-chassis-api';
const ACCESS_TOKEN_TYPE = 'at+jwt';
const CLOCK_TOLERANCE_SECONDS = 30;

export interface AccessClaims {
  /** The user id (immutable; never the email). */
  userId: string;
  /** The user's token_version when the token was issued. */
  version: number;
  /** The refresh family the token belongs to: logging out or reuse detection ends it too. */
  familyId: string;
}

/**
 * Short-lived HS256 access tokens. Verification pins the algorithm, the `at+jwt` type (so no other
 * kind of token passes as one), issuer and audience, and requires exp, iat, nbf, sub and jti.
 */
export class AccessTokens {
  constructor(
    private readonly key: Uint8Array,
    private readonly lifetimeSeconds: number,
  ) {}

  get expiresIn(): number {
    return this.lifetimeSeconds;
  }

  sign(claims: AccessClaims): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ ver: claims.version, sid: claims.familyId })
      .setProtectedHeader({ alg: 'HS256', typ: ACCESS_TOKEN_TYPE })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(claims.userId)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + this.lifetimeSeconds)
      .setJti(randomUUID())
      .sign(this.key);
  }

  /** The claims of a valid token, or null for anything else (never throws on bad input). */
  async verify(token: string): Promise<AccessClaims | null> {
    try {
      // Keys must come from our configuration only: a token naming its own key is refused outright.
      const header = decodeProtectedHeader(token);
      if ('jku' in header || 'jwk' in header || 'x5u' in header || 'x5c' in header) return null;
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        typ: ACCESS_TOKEN_TYPE,
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        // With maxTokenAge jose also refuses an iat in the future.
        maxTokenAge: this.lifetimeSeconds + CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'iat', 'nbf', 'sub', 'jti'],
      });
      if (typeof payload.sub !== 'string' || typeof payload.ver !== 'number' || typeof payload.sid !== 'string') return null;
      return { userId: payload.sub, version: payload.ver, familyId: payload.sid };
    } catch {
      return null;
    }
  }
}
