/**
 * Label values must stay few (each distinct value is a time series kept forever). Values come from
 * a known set, or the first `max` distinct ones seen are kept and the rest count as "other" (a
 * model name is whatever a request sends).
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  of(value: string | null | undefined): string {
    if (value === null || value === undefined || value === '') return 'none';
    const clipped = value.length > 80 ? value.slice(0, 80) : value;
    if (this.seen.has(clipped)) return clipped;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(clipped);
    return clipped;
  }
}

const KEY_END = new Set(['ip', 'user', 'email', 'verify', 'reset', 'exists']);

/**
 * The limit a rate-limiter key belongs to, without the caller in it: `api:user:alice` → `api:user`,
 * `auth:login:ip:10.0.0.1` → `auth:login:ip`, `auth:mail:verify:a@b.c` → `auth:mail:verify`.
 */
export function limitName(key: string): string {
  const parts = key.split(':');
  const kept: string[] = [];
  for (const part of parts.slice(0, 3)) {
    kept.push(part);
    if (KEY_END.has(part)) break;
  }
  return kept.join(':');
}
