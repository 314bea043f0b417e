import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import { ChassisError, unauthorized } from '../errors.js';

export interface GoogleIdentity {
  /** Google's stable account id: the account is keyed on it, not on the email. */
  sub: string;
  email: string;
  emailVerified: boolean;
  name: string | undefined;
}

export interface GoogleOptions {
  clientId: string;
  jwksUrl: string;
  issuers: string[];
  cooldownSeconds: number;
}

const JWKS_TIMEOUT_MS = 5_000;

/**
 * Google ID tokens checked against Google's published keys: RS256 only, aud = GOOGLE_CLIENT_ID,
 * iss in GOOGLE_ISSUERS, exp in the future. The key set is cached (10 min) and an unknown kid
 * refetches it at most once per cooldown (GOOGLE_JWKS_COOLDOWN_SECONDS), so logins do not fetch; a key server that is down
 * with nothing cached gives 503 within 5 s.
 */
export function createGoogleVerifier(options: GoogleOptions): (idToken: string) => Promise<GoogleIdentity> {
  const keys = createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: JWKS_TIMEOUT_MS, cooldownDuration: Math.round(options.cooldownSeconds * 1000), cacheMaxAge: 10 * 60_000 });
  const invalid = () => unauthorized('Invalid Google ID token');

  return async function verifyGoogleIdToken(idToken: string): Promise<GoogleIdentity> {
    let payload;
    try {
      ({ payload } = await jwtVerify(idToken, keys, {
        algorithms: ['RS256'],
        audience: options.clientId,
        issuer: options.issuers,
        clockTolerance: 30,
        requiredClaims: ['exp', 'iat', 'sub'],
      }));
    } catch (error) {
      if (keySetUnreachable(error)) {
        throw new ChassisError(503, 'UPSTREAM_UNAVAILABLE', "Google's signing keys could not be fetched; retry shortly", { cause: error, headers: { 'retry-after': '5' } });
      }
      throw invalid();
    }
    const { sub, email, email_verified: emailVerified, name, aud, azp } = payload;
    if (typeof sub !== 'string' || sub === '' || typeof email !== 'string') throw invalid();
    // OpenID Connect Core 3.1.3.7: a token for several audiences must name us as its authorized party,
    // or it was issued to another client that merely listed us.
    if (Array.isArray(aud) && aud.length > 1 && azp !== options.clientId) throw invalid();
    // Only the JSON boolean true counts: a string "true" (or anything else) is not a verified email.
    return { sub, email, emailVerified: emailVerified === true, name: typeof name === 'string' ? name : undefined };
  };
}

/** A failure to get the keys (timeout, refused, bad answer), as opposed to a bad token. */
function keySetUnreachable(error: unknown): boolean {
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return true;
  if (!(error instanceof errors.JOSEError)) return true; // fetch() failures (connection refused, DNS) are not JOSE errors
  return error.code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/.test(error.message);
}
