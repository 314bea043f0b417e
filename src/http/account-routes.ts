import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Accounts, Caller } from '../accounts/index.js';
import { featureDisabled } from '../errors.js';
import {
  EmailBody,
  GoogleBody,
  LoginBody,
  MeResponse,
  RefreshBody,
  RegisterBody,
  RegisterResponse,
  ResetConfirmBody,
  SuccessResponse,
  TokenResponse,
  VerifyEmailBody,
} from './account-schemas.js';
import { ErrorResponse } from './agent-schemas.js';
import type { IdentityResolver } from './identity.js';
import { limitAccountBodies } from './request-guards.js';

const errors = { '4xx': ErrorResponse, '5xx': ErrorResponse };

/** RFC 6749 §5.1: responses that carry tokens must never be cached. */
function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

const caller = (request: FastifyRequest): Caller => ({ ip: request.ip, log: request.log });

/**
 * /api/v1/auth (SPEC §5, plus /auth/logout). With ENABLE_USER_AUTH=false every route answers 503
 * before its body is even read, naming the setting to change.
 */
export function registerAccountRoutes(app: FastifyInstance, accounts: Accounts | undefined, identity: IdentityResolver): void {
  app.register(
    async (scope) => {
      scope.addHook('onRequest', async () => {
        if (accounts === undefined) throw featureDisabled('User accounts are disabled on this server: set ENABLE_USER_AUTH=true (and JWT_SECRET_KEY) to enable them');
      });
      limitAccountBodies(scope);
      const typed = scope.withTypeProvider<TypeBoxTypeProvider>();
      const service = () => accounts!;
      const tags = ['auth'];

      typed.post('/register', { schema: { tags, summary: 'Create an account; a 6-digit code is emailed', body: RegisterBody, response: { 201: RegisterResponse, ...errors } } }, async (request, reply) => {
        const created = await service().register(request.body, caller(request));
        return reply.code(201).send(created);
      });
      typed.post('/verify-email', { schema: { tags, summary: 'Verify the email address with the emailed code', body: VerifyEmailBody, response: { 200: SuccessResponse, ...errors } } }, async (request) =>
        service().verifyEmail(request.body, caller(request)),
      );
      typed.post('/resend-verification', { schema: { tags, summary: 'Send a new verification code (1 per minute per address)', body: EmailBody, response: { 200: SuccessResponse, ...errors } } }, async (request) =>
        service().resendVerification(request.body, caller(request)),
      );
      typed.post('/login', { schema: { tags, summary: 'Log in with email and password', body: LoginBody, response: { 200: TokenResponse, ...errors } } }, async (request, reply) => {
        noStore(reply);
        return service().login(request.body, caller(request));
      });
      typed.post('/refresh', { schema: { tags, summary: 'Exchange a refresh token for new tokens (rotation)', body: RefreshBody, response: { 200: TokenResponse, ...errors } } }, async (request, reply) => {
        noStore(reply);
        return service().refresh(request.body, caller(request));
      });
      typed.post('/logout', { schema: { tags, summary: "Revoke the refresh token's family (idempotent)", body: RefreshBody, response: { 200: SuccessResponse, ...errors } } }, async (request) =>
        service().logout(request.body, caller(request)),
      );
      typed.post('/google', { schema: { tags, summary: 'Sign in with a Google ID token', body: GoogleBody, response: { 200: TokenResponse, ...errors } } }, async (request, reply) => {
        noStore(reply);
        return service().google(request.body, caller(request));
      });
      typed.post('/password-reset', { schema: { tags, summary: 'Email a password-reset code (same answer for any address)', body: EmailBody, response: { 200: SuccessResponse, ...errors } } }, async (request) =>
        service().requestPasswordReset(request.body, caller(request)),
      );
      typed.post('/password-reset/confirm', { schema: { tags, summary: 'Set a new password with the emailed code', body: ResetConfirmBody, response: { 200: SuccessResponse, ...errors } } }, async (request) =>
        service().confirmPasswordReset(request.body, caller(request)),
      );
      typed.get('/me', { schema: { tags, summary: 'The logged-in user', security: [{ bearer: [] }], response: { 200: MeResponse, ...errors } } }, async (request) =>
        service().me(await identity(request)),
      );
    },
    { prefix: '/api/v1/auth' },
  );
}
