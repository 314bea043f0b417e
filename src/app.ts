import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import cors from '@fastify/cors';
import { accountMigrations, createAccounts, type Accounts } from './accounts/index.js';
import { RunTracker } from './agent/index.js';
import type { AgentCatalog, AgentDefinition } from './agents/catalog.js';
import { AgentDefinitionError, checkToolNames } from './agents/definition.js';
import { loadAgentCatalog } from './agents/file-catalog.js';
import { ResponseFormats } from './agents/resolve.js';
import type { Config } from './config.js';
import type { Database } from './db/index.js';
import { ChassisError, StartupError } from './errors.js';
import { registerAccountRoutes } from './http/account-routes.js';
import { registerAgentRoutes } from './http/agent-routes.js';
import { registerApprovalRoutes } from './http/approval-routes.js';
import { approvalMigrations, ApprovalService, DatabaseApprovalStore, MemoryApprovalStore } from './approvals/index.js';
import { registerAgentsRoutes } from './http/agents-routes.js';
import { closeUnusedConnectionsOnClose } from './http/closing-connections.js';
import { registerDocs } from './http/docs.js';
import { registerApiRateLimit } from './http/api-rate-limit.js';
import { answerClientError, registerErrorHandling } from './http/error-handler.js';
import { registerOpenAIRoutes } from './http/openai/routes.js';
import { registerHealthRoutes, type HealthCheck } from './http/health-routes.js';
import { registerReadyRoutes } from './http/ready-routes.js';
import { registerAdminRoutes } from './http/admin-routes.js';
import { registerPlayground } from './http/playground.js';
import { registerRunRoutes } from './http/run-routes.js';
import { createIdentityResolver, type BearerVerifier } from './http/identity.js';
import { limitBodilessRoutes, registerCredentialGate, refuseBareOptions } from './http/request-guards.js';
import { jsonBodiesOnly, methodNotAllowed } from './http/request-shape.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import { registerSessionRoutes } from './http/session-routes.js';
import { createOpenAIModelClient, type ModelClient } from './model/index.js';
import { createRateLimiter } from './limits/index.js';
import type { RedisConnection } from './redis/index.js';
import { DatabaseIdempotencyStore, idempotencyMigrations, MemoryIdempotencyStore, RunRegistry } from './runs/index.js';
import { createSessions, sessionMigrations } from './sessions/index.js';
import { createObservability } from './observability/index.js';
import { retentionMigrations, startRetention } from './retention/index.js';
import { builtinTools, createMcpTools, ToolRegistry, type McpTools, type Tool } from './tools/index.js';
import { VERSION } from './version.js';

/** What a test or an embedding product may swap in; everything else comes from config. */
export interface AppOverrides {
  model?: ModelClient;
  /** Extra local tools, registered after the built-ins (and TOOLS_DIR's). */
  tools?: Tool[];
  /** Agents defined in code, beside those of AGENTS_DIR (a file may not reuse their names). */
  agents?: AgentDefinition[];
  /** Where log lines go (default stdout); level, format and redaction stay as configured. */
  logStream?: { write(line: string): void };
  /** Verifies `Authorization: Bearer` tokens when the product brings its own identity provider. */
  bearerVerifier?: BearerVerifier;
  /** Where the built playground is (default packages/playground/dist). */
  playgroundDir?: string;
}

export interface Chassis {
  config: Config;
  tools: ToolRegistry;
  /** Named agents (AGENTS_DIR and code), as every surface looks them up. */
  agents: AgentCatalog;
  /** MCP servers from MCP_CONFIG_PATH: their state, and when the first connection attempts are over. */
  mcp: McpTools;
  runs: RunTracker;
  /** Stop taking work, let runs finish within the grace period, abort the rest, close everything. */
  shutdown(graceSeconds?: number): Promise<void>;
  readonly closing: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    chassis: Chassis;
  }
}

const requestTimeoutMs = (config: Config) => Math.round(config.requestTimeoutSeconds * 1000);

function loggerOptions(config: Config, stream: AppOverrides['logStream']): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    // UTC, readable: "time":"2026-11-28T18:45:12.345Z".
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'password', 'token', '*.password', '*.token'], censor: '[redacted]' },
    ...(stream === undefined ? {} : { stream }),
  };
}

/**
 * The composition root, in the order data flows: config → stores → services → routes → errors.
 * Server and tests both call this; nothing lives in module-level state.
 */
export async function buildApp(config: Config, overrides: AppOverrides = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config, overrides.logStream),
    // One line per request, written by our onResponse hook (with identity and route), not Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    clientErrorHandler: answerClientError,
    genReqId: () => randomUUID(),
    bodyLimit: config.bodyLimitBytes,
    // REQUEST_TIMEOUT_SECONDS bounds how long a request (headers and body) may take to arrive; a
    // streamed answer is not affected. Node enforces it only with headersTimeout ≤ requestTimeout,
    // and checks every connectionsCheckingInterval: keep that well under the timeout.
    requestTimeout: requestTimeoutMs(config),
    http: {
      headersTimeout: Math.min(60_000, requestTimeoutMs(config)),
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.round(requestTimeoutMs(config) / 4))),
    },
    // Trust only the proxy in front of us (hop 0): the client IP is the last X-Forwarded-For entry it added.
    trustProxy: config.trustProxy ? (_address: string, hop: number) => hop === 0 : false,
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
  });

  // Metrics and tracing, each loaded only when configured; their HTTP hooks go first.
  const observability = await createObservability(config, app);

  // Tools and agents first: a bad TOOLS_DIR module, MCP config or agent file stops the start
  // before any store or connection is opened, so a failed build leaves nothing behind.
  const tools = new ToolRegistry(config.toolTimeoutSeconds);
  for (const tool of builtinTools) tools.register(tool);
  if (config.toolsDir !== undefined) {
    const { loadToolsDir } = await import('./tools/tools-dir.js');
    await loadToolsDir(config.toolsDir, tools);
  }
  for (const tool of overrides.tools ?? []) tools.register(tool);
  observability.tools(tools);
  const mcp = await createMcpTools({
    configPath: config.mcpConfigPath,
    variables: config.mcpVariables,
    connectTimeoutSeconds: config.mcpConnectTimeoutSeconds,
    toolTimeoutSeconds: config.mcpToolTimeoutSeconds,
    registry: tools,
    log: app.log,
    clientVersion: VERSION,
    instrument: observability.mcp,
  });
  // Connect when the server gets ready, in the background: the API serves at once, each server's
  // tools appear when it is ready, and a build that fails half-way leaves no process behind.
  app.addHook('onReady', async () => mcp.start());
  app.addHook('onClose', () => mcp.close());
  const localToolNames = new Set(tools.list().map((tool) => tool.name));
  const mcpServers = new Set(mcp.status().map((server) => server.name));
  const agents = loadAgentCatalog({
    dir: config.agentsDir,
    codeAgents: overrides.agents,
    checkTools: (definition) => checkToolNames(definition, localToolNames, mcpServers),
    log: app.log,
  });
  // Edits to agent files apply while running; the watcher goes when the server closes.
  app.addHook('onReady', async () => agents.watch());
  app.addHook('onClose', async () => agents.close());

  // Stores: the database only when something durable is on; Redis only when configured. Each
  // optional part is imported only when used, so its libraries cost no memory otherwise.
  const healthChecks: HealthCheck[] = [];
  let database: Database | undefined;
  if (config.enablePersistence || config.enableUserAuth) {
    const { migrate, openDatabase } = await import('./db/index.js');
    try {
      database = openDatabase({ url: config.databaseUrl, connectTimeoutSeconds: config.dbConnectTimeoutSeconds, log: app.log });
      await migrate(database, { ...sessionMigrations, ...accountMigrations, ...idempotencyMigrations, ...approvalMigrations, ...retentionMigrations });
    } catch (error) {
      await database?.close().catch(() => undefined);
      // The start stops here naming the setting; the driver's message says why (it never holds the password).
      throw new StartupError('DATABASE_URL', `the database could not be opened and prepared: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const opened = database;
    app.addHook('onClose', () => opened.close());
    healthChecks.push({ name: 'db', required: true, check: () => opened.healthy() });
  }
  let redis: RedisConnection | undefined;
  if (config.redisUrl !== undefined) {
    const { connectRedis } = await import('./redis/index.js');
    redis = connectRedis(config.redisUrl, config.redisKeyPrefix, app.log);
    // Counters and locks fall back to this instance alone while Redis is not ready: give it a
    // moment at start so a healthy Redis is in use from the first request.
    await redis.whenReady(2_000);
    const connected = redis;
    app.addHook('onClose', () => connected.close());
    healthChecks.push({ name: 'redis', required: false, check: () => connected.healthy() });
  }

  // Services
  const limits = createRateLimiter(redis);
  app.addHook('onClose', async () => limits.close());
  const limiter = observability.limiter(limits.limiter);
  const model = observability.model(overrides.model ?? createOpenAIModelClient(config, VERSION));
  const runs = new RunTracker(config.maxConcurrentRuns, config.runDeadlineSeconds);
  const registry = new RunRegistry({ ttlSeconds: config.runEventsTtlSeconds, maxKeptEvents: config.runEventsMaxKept }, redis, app.log);
  const idempotency =
    database === undefined ? new MemoryIdempotencyStore(config.idempotencyTtlSeconds) : new DatabaseIdempotencyStore(database, config.idempotencyTtlSeconds);
  app.addHook('onClose', () => registry.close());
  let bearerVerifier: BearerVerifier | undefined = overrides.bearerVerifier;
  const sessions =
    config.enablePersistence && database !== undefined
      ? createSessions({
          database,
          redis,
          maxMessages: config.sessionMaxMessages,
          historyMemoryBytes: config.sessionHistoryMemoryMb * 1024 * 1024,
          leaseSeconds: config.sessionLeaseSeconds,
          cacheTtlSeconds: config.sessionTtlSeconds,
          queueMaxWaiting: config.sessionQueueMaxWaiting,
          queueTimeoutSeconds: config.sessionQueueTimeoutSeconds,
          log: app.log,
        })
      : undefined;
  const responseFormats = new ResponseFormats();
  const approvals = new ApprovalService({
    store: database === undefined ? new MemoryApprovalStore() : new DatabaseApprovalStore(database),
    durable: database !== undefined,
    timeoutSeconds: config.approvalTimeoutSeconds,
    registry,
    runs,
    agent: { model, tools, maxSteps: config.maxAgentSteps },
    sessions: sessions?.turns,
    responseFormats,
    redis,
    runDeadlineSeconds: config.runDeadlineSeconds,
    log: app.log,
    observability,
  });
  // Runs left waiting by an earlier start are taken up once serving; let go of ours before the stores close.
  app.addHook('onReady', async () => approvals.start());
  app.addHook('preClose', () => approvals.close());
  if (database !== undefined) startRetention(app, config, database);
  observability.watch({ runs, mcp, waitingRuns: () => sessions?.waiting() ?? 0, openStreams: () => app.sseStreams.count, redis });
  const identity = createIdentityResolver(config, () => bearerVerifier);
  let accounts: Accounts | undefined;
  if (config.enableUserAuth && database !== undefined) {
    const { createMailer } = await import('./mail/index.js');
    const mailer = createMailer(config, app.log);
    const started = await createAccounts({ config, database, limiter, mailer, log: app.log });
    accounts = started;
    bearerVerifier = (token) => started.verifyBearer(token);
    // Before the stores close: mail still being sent after an answer gets to finish.
    app.addHook('preClose', () => started.drain());
    app.addHook('onClose', () => mailer.close());
  }

  let closing = false;
  const chassis: Chassis = {
    config,
    tools,
    agents,
    mcp,
    runs,
    get closing() {
      return closing;
    },
    async shutdown(graceSeconds = config.shutdownGraceSeconds) {
      if (closing) return;
      closing = true;
      const drained = runs.drain();
      const grace = new Promise<'late'>((resolve) => setTimeout(resolve, graceSeconds * 1000, 'late').unref());
      if ((await Promise.race([drained, grace])) === 'late') {
        runs.abortAll(new ChassisError(503, 'SHUTTING_DOWN', 'The server is shutting down; the run was stopped'));
        await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      }
      await app.close();
    },
  };
  app.decorate('chassis', chassis);
  app.decorate('sseStreams', { count: 0 });
  app.addHook('onClose', async () => {
    await model.close();
  });

  // Cross-cutting HTTP behaviour
  closeUnusedConnectionsOnClose(app);
  jsonBodiesOnly(app);
  registerErrorHandling(app, { wrongMethod: methodNotAllowed(app) });
  registerSecurityHeaders(app);
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    if (closing && request.routeOptions.url !== '/health' && request.routeOptions.url !== '/api/v1/health') {
      // An error, not a reply: the route's error handler answers, in OpenAI's shape on the /v1 surface.
      return done(new ChassisError(503, 'SHUTTING_DOWN', 'The server is shutting down; retry on another instance', { headers: { 'retry-after': '1', connection: 'close' } }));
    }
    // Bodies are read as sent: a compressed one would only fail as bad JSON (and is never inflated).
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      return done(new ChassisError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${encoding.slice(0, 40)}" is not supported: send the body uncompressed`));
    }
    done();
  });
  if (config.enableRateLimiting) registerApiRateLimit(app, limiter, config.apiRateLimitPerMinute, identity);
  // Before the CORS plugin, which would answer a bare OPTIONS in text/plain.
  refuseBareOptions(app);
  // Routes without a body schema take no body worth reading.
  limitBodilessRoutes(app);
  // The per-request line is at info: below that level skip building it at all.
  if (['info', 'debug', 'trace'].includes(config.logLevel)) {
    app.addHook('onResponse', async (request, reply) => {
      const principal = await identity.known(request);
      request.log.info(
        { method: request.method, route: request.routeOptions.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime), user: principal?.userId ?? null, via: principal?.via ?? null },
        'request',
      );
    });
  }
  await app.register(cors, {
    origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
    credentials: false,
    methods: ['GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'X-API-Key', 'X-User-ID', 'Content-Type', 'Idempotency-Key', 'Last-Event-ID', 'X-Session-Id'],
    exposedHeaders: ['X-Request-Id', 'X-Run-Id', 'X-Session-Id', 'Retry-After'],
    maxAge: 600,
  });
  // After the rate limit (wrong credentials are still counted) and CORS (a browser can read the
  // 401), before any body is read.
  registerCredentialGate(app, identity);
  registerDocs(app, VERSION);

  // Routes
  registerHealthRoutes(app, () => healthChecks, () => closing, VERSION, config.enableUserAuth);
  registerReadyRoutes(app, () => healthChecks, mcp, () => closing);
  registerAgentRoutes(app, { config, model, tools, runs, registry, idempotency, identity, approvals, sessions: sessions?.turns, agents, responseFormats, observe: observability.run });
  registerAgentsRoutes(app, agents, identity);
  registerRunRoutes(app, { config, registry, identity, approvals, sessions: sessions?.service });
  registerApprovalRoutes(app, { approvals, identity });
  registerSessionRoutes(app, { identity, sessions: sessions?.service });
  registerAccountRoutes(app, accounts, identity);
  await registerOpenAIRoutes(app, {
    config,
    model,
    tools,
    runs,
    registry,
    identity,
    agents,
    responseFormats,
    sessions: sessions?.turns,
    responses: sessions?.responses,
    observe: observability.run,
  });
  registerAdminRoutes(app, { db: accounts === undefined ? undefined : database?.db, identity, apiKeyConfigured: config.chassisApiKey !== undefined });
  registerPlayground(app, config, overrides.playgroundDir);

  return app;
}
