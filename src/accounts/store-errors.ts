import { ChassisError, storeUnavailable } from '../errors.js';

/** A unique constraint refused the write (the same email or Google account twice). */
export class UniqueViolation extends Error {}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Runs a store operation: a database failure becomes 503 (never a 500 carrying SQL). */
export async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof ChassisError) throw error;
    if (isUniqueViolation(error)) throw new UniqueViolation('unique constraint', { cause: error });
    throw storeUnavailable(error);
  }
}
