import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const envExample = readFileSync('.env.example', 'utf8');
/** Every name .env.example documents, set (`NAME=`) or shown commented out (`# NAME=`). */
const documented = new Set([...envExample.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]!));

describe('compose.yaml, Dockerfile and .env.example agree', () => {
  it('sets only variables that .env.example documents', () => {
    const compose = parse(readFileSync('compose.yaml', 'utf8'));
    const environment = compose.services.app.environment as Record<string, string>;
    const names = Object.keys(environment);
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((name) => !documented.has(name))).toEqual([]);
    // Wired to the stores compose starts, by service name.
    expect(environment.DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
    expect(environment.REDIS_URL).toBe('redis://redis:6379');
    expect(Object.keys(compose.services).sort()).toEqual(['app', 'postgres', 'redis']);
    expect(compose.services.postgres.volumes.join()).toContain('/var/lib/postgresql/data');
    expect(compose.services.redis.volumes.join()).toContain('/data');
  });

  it('documents in .env.example every variable src/config.ts reads', () => {
    const config = readFileSync('src/config.ts', 'utf8');
    const read = [...config.matchAll(/\(env, '([A-Z][A-Z0-9_]*)'/g)].map((match) => match[1]!);
    expect(read.length).toBeGreaterThan(40);
    expect(read.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('builds in stages and runs node itself, as a non-root user, with production dependencies and a health check', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-slim$/m);
    expect(dockerfile).toContain('npm ci --omit=dev');
    expect(dockerfile).toMatch(/^HEALTHCHECK [\s\S]*\/health/m);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('FROM '));
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime.indexOf('USER node')).toBeLessThan(runtime.indexOf('CMD '));
    // Exec form: no shell between the container's stop signal and node.
    expect(runtime).toMatch(/^CMD \["node", "dist\/main\.js"\]$/m);
  });
});
