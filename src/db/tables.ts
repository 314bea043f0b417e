/**
 * The database schema as Kysely sees it. Each module adds its own tables by augmenting this
 * interface from its own folder (`declare module '../db/tables.js' { interface Tables { … } }`),
 * so no module edits another's types.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Tables {}
