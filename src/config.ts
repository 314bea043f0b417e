import { existsSync } from 'node:fs';

/**
 * The only reader of process.env. Every setting is declared once here with its default and
 * bounds; a bad value stops the start with a message naming the variable (never its value).
 */

/** A setting that stops the start: `setting` names the variable, the message says why (never its value). */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  return raw === undefined || raw === '' ? fallback : raw;
}

function optional(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw;
}

function num(env: Env, name: string, fallback: number, min: number, max: number, integer = true): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw.trim());
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    throw new ConfigError(name, `${name} must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}`);
  }
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(name, `${name} must be true or false`);
}

/** A URL with one of `schemes` (e.g. `http:`), checked at start rather than failing at first use. */
function url(env: Env, name: string, fallback: string | undefined, schemes: string[], example: string): string | undefined {
  const raw = optional(env, name) ?? fallback;
  if (raw === undefined) return undefined;
  let parsed: URL | undefined;
  try {
    parsed = new URL(raw.trim());
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || !schemes.includes(parsed.protocol)) {
    throw new ConfigError(name, `${name} must be a URL starting with ${schemes.map((scheme) => `${scheme}//`).join(' or ')} (e.g. ${example})`);
  }
  return raw.trim();
}

function databaseUrl(env: Env): string {
  const raw = str(env, 'DATABASE_URL', 'sqlite:./data/agent-chassis.db').trim();
  if (raw.startsWith('sqlite:')) return raw;
  return url(env, 'DATABASE_URL', undefined, ['postgres:', 'postgresql:'], 'sqlite:./data/agent-chassis.db or postgres://user:password@host:5432/db')!;
}

function list(env: Env, name: string, fallback: string): string[] {
  return str(env, name, fallback)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export function loadConfig(env: Env = process.env) {
  const enableUserAuth = bool(env, 'ENABLE_USER_AUTH', false);
  const jwtSecretKey = optional(env, 'JWT_SECRET_KEY');
  if (enableUserAuth && (jwtSecretKey === undefined || jwtSecretKey.length < 32)) {
    throw new ConfigError('JWT_SECRET_KEY', 'JWT_SECRET_KEY must be set to at least 32 characters when ENABLE_USER_AUTH=true');
  }
  const corsOrigins = list(env, 'CORS_ORIGINS', '*');
  const toolTimeoutSeconds = num(env, 'TOOL_TIMEOUT_SECONDS', 30, 0.01, 3600, false);

  const config = {
    port: num(env, 'PORT', 8000, 0, 65535),
    host: str(env, 'HOST', '127.0.0.1'),
    logLevel: str(env, 'LOG_LEVEL', 'info'),

    // Model upstream
    openaiApiKey: optional(env, 'OPENAI_API_KEY'),
    openaiBaseUrl: url(env, 'OPENAI_BASE_URL', undefined, ['http:', 'https:'], 'https://api.openai.com/v1'),
    openaiModel: str(env, 'OPENAI_MODEL', 'kimi-k2-thinking'),
    upstreamConnectTimeoutSeconds: num(env, 'UPSTREAM_CONNECT_TIMEOUT_SECONDS', 10, 0.1, 600, false),
    upstreamIdleTimeoutSeconds: num(env, 'UPSTREAM_IDLE_TIMEOUT_SECONDS', 60, 0.1, 3600, false),
    upstreamMaxRetries: num(env, 'UPSTREAM_MAX_RETRIES', 2, 0, 10),
    upstreamRetryBaseMs: num(env, 'UPSTREAM_RETRY_BASE_MS', 500, 0, 60_000),
    upstreamRetryAfterMaxSeconds: num(env, 'UPSTREAM_RETRY_AFTER_MAX_SECONDS', 20, 0, 600, false),

    // Agent loop
    maxAgentSteps: num(env, 'MAX_AGENT_STEPS', 10, 1, 100),
    runDeadlineSeconds: num(env, 'RUN_DEADLINE_SECONDS', 600, 1, 86_400, false),
    toolTimeoutSeconds,
    maxConcurrentRuns: num(env, 'MAX_CONCURRENT_RUNS', 256, 1, 100_000),
    sseHeartbeatSeconds: num(env, 'SSE_HEARTBEAT_SECONDS', 15, 0.01, 300, false),
    approvalTimeoutSeconds: num(env, 'APPROVAL_TIMEOUT_SECONDS', 3600, 1, 604_800, false),
    runEventsTtlSeconds: num(env, 'RUN_EVENTS_TTL_SECONDS', 3600, 0, 604_800, false),
    runEventsMaxKept: num(env, 'RUN_EVENTS_MAX_KEPT', 100_000, 0, 100_000_000),
    idempotencyTtlSeconds: num(env, 'IDEMPOTENCY_TTL_SECONDS', 86_400, 1, 2_592_000, false),
    mcpConfigPath: str(env, 'MCP_CONFIG_PATH', 'mcp_config.json'),
    // Named agents, one YAML/JSON file each (a missing or empty directory means none); watched while running.
    agentsDir: str(env, 'AGENTS_DIR', './agents'),
    // Local tools from .js/.mjs modules; unset = none.
    toolsDir: optional(env, 'TOOLS_DIR'),
    mcpConnectTimeoutSeconds: num(env, 'MCP_CONNECT_TIMEOUT_SECONDS', 10, 0.1, 600, false),
    mcpToolTimeoutSeconds: num(env, 'MCP_TOOL_TIMEOUT_SECONDS', toolTimeoutSeconds, 0.01, 3600, false),
    /** The environment as read at start: `${VAR}` in the MCP config's headers and env take their values from it. */
    mcpVariables: Object.freeze({ ...env }) as Readonly<Env>,

    // Access
    chassisApiKey: optional(env, 'CHASSIS_API_KEY'),
    corsOrigins,
    trustProxy: bool(env, 'TRUST_PROXY', false),
    // The web page at /playground (served only when `npm run build` has built it).
    enablePlayground: bool(env, 'ENABLE_PLAYGROUND', true),

    // Persistence
    enablePersistence: bool(env, 'ENABLE_PERSISTENCE', true),
    databaseUrl: databaseUrl(env),
    dbConnectTimeoutSeconds: num(env, 'DB_CONNECT_TIMEOUT_SECONDS', 5, 0.1, 600, false),
    redisUrl: url(env, 'REDIS_URL', undefined, ['redis:', 'rediss:'], 'redis://127.0.0.1:6379'),
    redisKeyPrefix: str(env, 'REDIS_KEY_PREFIX', 'chassis:'),
    sessionTtlSeconds: num(env, 'SESSION_TTL_SECONDS', 86_400, 1, 31_536_000),
    sessionMaxMessages: num(env, 'SESSION_MAX_MESSAGES', 100, 2, 100_000),
    // Recent session histories kept in this process's memory (0 = off: every turn reads them from the store).
    sessionHistoryMemoryMb: num(env, 'SESSION_HISTORY_MEMORY_MB', 64, 0, 65_536, false),
    // How long a run holds its session without renewing (renewed every third of it): a dead instance frees it after this.
    sessionLeaseSeconds: num(env, 'SESSION_LEASE_SECONDS', 60, 0.1, 3600, false),
    sessionQueueMaxWaiting: num(env, 'SESSION_QUEUE_MAX_WAITING', 8, 0, 10_000),
    sessionQueueTimeoutSeconds: num(env, 'SESSION_QUEUE_TIMEOUT_SECONDS', 30, 0, 3600, false),

    // Accounts
    enableUserAuth,
    jwtSecretKey,
    jwtAccessTokenExpireMinutes: num(env, 'JWT_ACCESS_TOKEN_EXPIRE_MINUTES', 30, 0.01, 525_600, false),
    jwtRefreshTokenExpireDays: num(env, 'JWT_REFRESH_TOKEN_EXPIRE_DAYS', 7, 0.00001, 3650, false),
    googleClientId: optional(env, 'GOOGLE_CLIENT_ID'),
    googleJwksUrl: url(env, 'GOOGLE_JWKS_URL', 'https://www.googleapis.com/oauth2/v3/certs', ['http:', 'https:'], 'https://www.googleapis.com/oauth2/v3/certs')!,
    googleIssuers: list(env, 'GOOGLE_ISSUERS', 'accounts.google.com,https://accounts.google.com'),
    // After a key-set fetch, an unknown kid waits this long before fetching again (jose's cooldown).
    googleJwksCooldownSeconds: num(env, 'GOOGLE_JWKS_COOLDOWN_SECONDS', 30, 0, 3600, false),
    smtpHost: optional(env, 'SMTP_HOST'),
    smtpPort: num(env, 'SMTP_PORT', 587, 1, 65535),
    smtpUser: optional(env, 'SMTP_USER'),
    smtpPassword: optional(env, 'SMTP_PASSWORD'),
    emailFrom: str(env, 'EMAIL_FROM', 'noreply@example.com'),
    verificationCodeExpireMinutes: num(env, 'VERIFICATION_CODE_EXPIRE_MINUTES', 15, 0.001, 1440, false),
    verificationMaxAttempts: num(env, 'VERIFICATION_MAX_ATTEMPTS', 3, 1, 100),
    verificationRateLimitSeconds: num(env, 'VERIFICATION_RATE_LIMIT_SECONDS', 60, 0, 86_400, false),
    loginRateLimitAttempts: num(env, 'LOGIN_RATE_LIMIT_ATTEMPTS', 5, 1, 1_000_000),
    loginRateLimitWindowSeconds: num(env, 'LOGIN_RATE_LIMIT_WINDOW_SECONDS', 900, 1, 86_400, false),
    enableRateLimiting: bool(env, 'ENABLE_RATE_LIMITING', true),
    apiRateLimitPerMinute: num(env, 'API_RATE_LIMIT_PER_MINUTE', 60, 1, 10_000_000),
    // Brute-force limits of the account endpoints (always on; ENABLE_RATE_LIMITING is the general limit only).
    loginAccountRateLimitAttempts: num(env, 'LOGIN_ACCOUNT_RATE_LIMIT_ATTEMPTS', 10, 1, 1_000_000),
    codeCheckRateLimitPerIp: num(env, 'CODE_CHECK_RATE_LIMIT_PER_IP', 30, 1, 1_000_000),
    codeCheckRateLimitPerEmail: num(env, 'CODE_CHECK_RATE_LIMIT_PER_EMAIL', 10, 1, 1_000_000),
    tokenRateLimitPerIp: num(env, 'TOKEN_RATE_LIMIT_PER_IP', 150, 1, 1_000_000),
    emailRateLimitPerIp: num(env, 'EMAIL_RATE_LIMIT_PER_IP', 30, 1, 1_000_000),
    refreshTokenReuseIntervalSeconds: num(env, 'REFRESH_TOKEN_REUSE_INTERVAL_SECONDS', 10, 0, 3600, false),
    // argon2id: OWASP's floor (m = 19 MiB, t = 2) is the minimum accepted.
    argon2MemoryKib: num(env, 'ARGON2_MEMORY_KIB', 19_456, 19_456, 4_194_304),
    argon2TimeCost: num(env, 'ARGON2_TIME_COST', 2, 2, 100),
    passwordHashConcurrency: num(env, 'PASSWORD_HASH_CONCURRENCY', 2, 1, 256),
    passwordHashQueue: num(env, 'PASSWORD_HASH_QUEUE', 32, 0, 100_000),

    // Input limits
    maxMessageLength: num(env, 'MAX_MESSAGE_LENGTH', 100_000, 1, 10_000_000),
    maxMetadataSize: num(env, 'MAX_METADATA_SIZE', 10_000, 2, 10_000_000),
    maxMessagesPerRequest: num(env, 'MAX_MESSAGES_PER_REQUEST', 100, 1, 100_000),
    bodyLimitBytes: num(env, 'BODY_LIMIT_BYTES', 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    // The longest a request (headers and body) may take to arrive; a trickled body is cut off with 408.
    requestTimeoutSeconds: num(env, 'REQUEST_TIMEOUT_SECONDS', 60, 0.5, 3600, false),

    // Lifecycle
    shutdownGraceSeconds: num(env, 'SHUTDOWN_GRACE_SECONDS', 25, 0, 3600, false),

    // Operations (README "Operations")
    ...operationsConfig(env),
  };
  return Object.freeze(config);
}

export type Config = ReturnType<typeof loadConfig>;

function operationsConfig(env: Env) {
  const metricsToken = optional(env, 'METRICS_TOKEN');
  if (metricsToken !== undefined && metricsToken.length < 16) throw new ConfigError('METRICS_TOKEN', 'METRICS_TOKEN must be at least 16 characters');
  const otlpBase = optional(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const otlpTraces = optional(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const protocol = str(env, 'OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json');
  if (protocol !== 'http/json') throw new ConfigError('OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL must be http/json (the only OTLP protocol this server sends)');
  // The spec's rule: the base endpoint gets /v1/traces appended; the per-signal one is used as is.
  const otlpTracesUrl = otlpTraces ?? (otlpBase === undefined ? undefined : `${otlpBase.replace(/\/+$/, '')}/v1/traces`);
  if (otlpTracesUrl !== undefined && !/^https?:\/\/[^/\s]+/.test(otlpTracesUrl)) {
    const setting = otlpTraces === undefined ? 'OTEL_EXPORTER_OTLP_ENDPOINT' : 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
    throw new ConfigError(setting, `${setting} must be an http(s) URL`);
  }
  return {
    metricsEnabled: bool(env, 'METRICS_ENABLED', false),
    metricsToken,
    /** Where spans go; tracing (and every OpenTelemetry module) is loaded only when set. */
    otlpTracesUrl,
    otlpHeaders: otlpHeaders(optional(env, 'OTEL_EXPORTER_OTLP_HEADERS')),
    otelServiceName: str(env, 'OTEL_SERVICE_NAME', 'agent-chassis'),
    otelCaptureContent: bool(env, 'OTEL_CAPTURE_CONTENT', false),
    /** 0 = keep sessions forever. */
    sessionRetentionDays: num(env, 'SESSION_RETENTION_DAYS', 0, 0, 36_500, false),
    retentionIntervalSeconds: num(env, 'RETENTION_INTERVAL_SECONDS', 3600, 1, 604_800, false),
    retentionBatchSize: num(env, 'RETENTION_BATCH_SIZE', 200, 1, 10_000),
  };
}

/** `key=value,key=value` as the OTel spec writes it (values may be percent-encoded). */
function otlpHeaders(raw: string | undefined): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  if (raw === undefined) return headers;
  for (const pair of raw.split(',')) {
    const at = pair.indexOf('=');
    const key = pair.slice(0, at).trim();
    if (at <= 0 || key === '') throw new ConfigError('OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS must be key=value pairs separated by commas');
    try {
      headers[key] = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      throw new ConfigError('OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS has a badly percent-encoded value');
    }
  }
  return Object.freeze(headers);
}

/** Reads `.env` from the working directory (existing environment variables win), like the Python version. */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}
