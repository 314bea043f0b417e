export { openDatabase, migrate, storeUnavailable, type Database, type Dialect } from './database.js';
export type { Tables } from './tables.js';
