import type { FastifyInstance } from 'fastify';
import { Type } from '../json-schema.js';
import { described, PUBLIC } from './openapi.js';

/** A store the health check reports: `required` ones turn the answer into 503 when down. */
export interface HealthCheck {
  name: string;
  required: boolean;
  check(): Promise<boolean>;
}

export interface StoreStates {
  /** Each store: true up, false down, null not configured. */
  stores: Record<string, boolean | null>;
  requiredDown: boolean;
  optionalDown: boolean;
}

/** Asks every store at once; a check that throws counts as down. Shared by /health and /ready. */
export async function checkStores(checks: HealthCheck[]): Promise<StoreStates> {
  const states: StoreStates = { stores: { db: null, redis: null }, requiredDown: false, optionalDown: false };
  await Promise.all(
    checks.map(async (health) => {
      const ok = await health.check().catch(() => false);
      states.stores[health.name] = ok;
      if (!ok && health.required) states.requiredDown = true;
      if (!ok && !health.required) states.optionalDown = true;
    }),
  );
  return states;
}

const HealthResponse = Type.Object({
  status: Type.String({ description: 'ok | degraded | unavailable | shutting_down' }),
  stores: Type.Record(Type.String(), Type.Union([Type.Boolean(), Type.Null()])),
  version: Type.String(),
  user_auth_enabled: Type.Boolean({ description: 'ENABLE_USER_AUTH, as the Python version reports it' }),
});

export function registerHealthRoutes(app: FastifyInstance, checks: () => HealthCheck[], isClosing: () => boolean, version: string, userAuthEnabled = false): void {
  const handler = async (_request: unknown, reply: import('fastify').FastifyReply) => {
    const { stores, requiredDown, optionalDown } = await checkStores(checks());
    const status = isClosing() ? 'shutting_down' : requiredDown ? 'unavailable' : optionalDown ? 'degraded' : 'ok';
    return reply.code(status === 'shutting_down' || status === 'unavailable' ? 503 : 200).send({ status, stores, version, user_auth_enabled: userAuthEnabled });
  };
  const schema = (operationId: string) => ({
    operationId,
    tags: ['health'],
    summary: 'Liveness and store status',
    security: PUBLIC,
    response: {
      200: described(HealthResponse, 'Serving: ok, or degraded when only Redis is down'),
      503: described(HealthResponse, 'Not serving: the database is down (unavailable) or the server is draining (shutting_down)'),
    },
  });
  app.get('/health', { schema: schema('getHealth') }, handler);
  app.get('/api/v1/health', { schema: schema('getApiHealth') }, handler);
}
