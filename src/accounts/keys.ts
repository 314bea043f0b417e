import { hkdfSync } from 'node:crypto';

export interface AccountKeys {
  /** HS256 key of access tokens: JWT_SECRET_KEY itself, as in the Python version. */
  accessToken: Uint8Array;
  /** HMAC key for stored email codes. */
  emailCodes: Buffer;
  /** HMAC key that derives a refresh token's successor from the token (see refresh-tokens.ts). */
  refreshSuccessor: Buffer;
}

/** One secret in the config, separate keys per use: a leak of one derived key does not forge the others. */
export function deriveKeys(jwtSecretKey: string): AccountKeys {
  const master = Buffer.from(jwtSecretKey, 'utf8');
  const derive = (label: string) => Buffer.from(hkdfSync('sha256', master, 'agent-chassis/accounts', label, 32));
  return { accessToken: new Uint8Array(master), emailCodes: derive('email-codes'), refreshSuccessor: derive('refresh-successor') };
}
