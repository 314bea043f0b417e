export { openDatabase, migrate, type Database, type Dialect } from './database.js';
export { storeUnavailable } from '../errors.js';
export type { Tables } from './tables.js';
