import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { setUserDisabled } from '../accounts/admin.js';
import type { Tables } from '../db/index.js';
import { featureDisabled, forbidden, notFound } from '../errors.js';
import { Type } from '../json-schema.js';
import { ErrorResponse } from './agent-schemas.js';
import type { IdentityResolver } from './identity.js';

const UserParams = Type.Object({ user: Type.String({ minLength: 1, maxLength: 254, description: 'The user id, or the email address' }) });
const UserAccessResponse = Type.Object({
  user_id: Type.String(),
  email: Type.String(),
  disabled: Type.Boolean(),
  sessions_ended: Type.Integer({ description: 'Logins (refresh-token families) ended by this call' }),
});

const error = (description: string) => ({ ...ErrorResponse, description });

/**
 * Operator endpoints, behind CHASSIS_API_KEY only (X-API-Key): a user's bearer token never
 * reaches them, whatever the user. Without user accounts they answer 503 FEATURE_DISABLED.
 */
export function registerAdminRoutes(app: FastifyInstance, deps: { db: Kysely<Tables> | undefined; identity: IdentityResolver; apiKeyConfigured: boolean }): void {
  for (const action of ['disable', 'enable'] as const) {
    app.post<{ Params: { user: string } }>(
      `/api/v1/admin/users/:user/${action}`,
      {
        schema: {
          operationId: action === 'disable' ? 'disableUser' : 'enableUser',
          tags: ['admin'],
          summary:
            action === 'disable'
              ? 'Disable a user: every login and access token stops working at once (X-API-Key only)'
              : 'Re-enable a disabled user (they sign in again; X-API-Key only)',
          security: [{ adminKey: [] }],
          params: UserParams,
          response: {
            200: { ...UserAccessResponse, description: 'The user as it is now' },
            401: error('No or a wrong X-API-Key'),
            403: error('Called with something other than the API key'),
            404: error('No user with that id or email'),
            429: error('Rate limited'),
            500: error('Internal server error (details only in the server log)'),
            503: error('User accounts are off (ENABLE_USER_AUTH), or the database is unavailable'),
          },
        },
      },
      async (request) => {
        if (!deps.apiKeyConfigured) throw forbidden('Admin endpoints need CHASSIS_API_KEY to be set, and are called with it');
        const principal = await deps.identity(request);
        if (principal.via !== 'api_key') throw forbidden('Admin endpoints are called with the X-API-Key');
        if (deps.db === undefined) throw featureDisabled('User accounts are disabled on this server: set ENABLE_USER_AUTH=true');
        const change = await setUserDisabled(deps.db, request.params.user, action === 'disable');
        if (change === undefined) throw notFound('No user with that id or email');
        request.log.info({ admin: true, action, userId: change.id, sessionsEnded: change.sessionsEnded }, `user ${action}d`);
        return { user_id: change.id, email: change.email, disabled: change.disabled, sessions_ended: change.sessionsEnded };
      },
    );
  }
}
