export { openDatabase, migrate, type Database, type Dialect } from './database.js';
export type { Tables } from './tables.js';
