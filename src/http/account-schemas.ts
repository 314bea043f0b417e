import { Type } from '../json-schema.js';
import { PASSWORD_MAX_LENGTH } from '../accounts/index.js';

/**
 * Request and response shapes of /api/v1/auth (SPEC §5). Requests name only the fields a client may
 * set; anything else in the body is ignored, so privileged fields can never be mass-assigned.
 * Responses are serialised through these schemas: a field not listed here never leaves the server.
 */

// Generous outer bounds; the exact rules (trimmed ≤ 254, no control characters) are checked in code.
const Email = Type.String({ minLength: 1, maxLength: 320, description: 'Email address (trimmed and lower-cased)' });
const Password = (description: string) => Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, description });
const Code = Type.String({ minLength: 1, maxLength: 32, description: 'The 6-digit code from the mail' });
const RefreshToken = Type.String({ minLength: 1, maxLength: 512, description: 'An opaque refresh token' });

export const RegisterBody = Type.Object({
  email: Email,
  password: Password('At least 8 characters with a letter and a digit; common passwords are refused'),
  display_name: Type.Optional(Type.Union([Type.String({ maxLength: 400 }), Type.Null()], { description: 'Up to 100 characters' })),
});
export const VerifyEmailBody = Type.Object({ email: Email, code: Code });
export const EmailBody = Type.Object({ email: Email });
export const LoginBody = Type.Object({ email: Email, password: Password('The password, exactly as chosen') });
export const RefreshBody = Type.Object({ refresh_token: RefreshToken });
export const GoogleBody = Type.Object({ id_token: Type.String({ minLength: 1, maxLength: 8192, description: 'A Google Sign-In ID token' }) });
export const ResetConfirmBody = Type.Object({ email: Email, code: Code, new_password: Password('The new password (same rules as register)') });

export const RegisterResponse = Type.Object({ user_id: Type.String(), email: Type.String(), message: Type.String() });
export const SuccessResponse = Type.Object({ success: Type.Boolean(), message: Type.String() });
export const TokenResponse = Type.Object({
  access_token: Type.String({ description: 'HS256 JWT for Authorization: Bearer' }),
  refresh_token: Type.String({ description: 'Opaque; single use: every refresh returns a new one' }),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
});
export const MeResponse = Type.Object({
  id: Type.String(),
  email: Type.String(),
  email_verified: Type.Boolean(),
  has_google_auth: Type.Boolean(),
  display_name: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ description: 'ISO 8601, UTC' }),
  is_admin: Type.Boolean(),
});
