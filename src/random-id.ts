import { randomFillSync } from 'node:crypto';

const ID_BYTES = 16;
// Random bytes for 256 ids at a time: one call into the CSPRNG per id cost more than the rest of
// starting a run (crypto.randomUUID pools the same way).
const pool = Buffer.alloc(ID_BYTES * 256);
let offset = pool.length;

/** 128 random bits, base64url (22 characters): for ids that are also secrets (runs, sessions, approvals). */
export function randomId(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return id;
}
