import type { Kysely, Migration } from 'kysely';

/**
 * Plain column types both SQLite and PostgreSQL accept and read back as JS numbers and strings:
 * times are epoch milliseconds in `double precision` (pg returns `bigint` as a string).
 */
export const sessionMigrations: Record<string, Migration> = {
  '2026-11-28a-sessions': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (column) => column.primaryKey())
        .addColumn('owner_id', 'text')
        .addColumn('is_public', 'integer', (column) => column.notNull().defaultTo(0))
        .addColumn('whitelist', 'text', (column) => column.notNull().defaultTo('[]'))
        .addColumn('blacklist', 'text', (column) => column.notNull().defaultTo('[]'))
        .addColumn('acl_version', 'integer', (column) => column.notNull().defaultTo(0))
        .addColumn('system_prompt', 'text')
        .addColumn('model', 'text')
        .addColumn('metadata', 'text')
        .addColumn('message_count', 'integer', (column) => column.notNull().defaultTo(0))
        .addColumn('next_seq', 'integer', (column) => column.notNull().defaultTo(1))
        .addColumn('created_at', 'double precision', (column) => column.notNull())
        .addColumn('updated_at', 'double precision', (column) => column.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', 'double precision')
        .execute();
      // "My sessions, newest first" pages through this index.
      await db.schema
        .createIndex('sessions_owner_updated')
        .on('sessions')
        .columns(['owner_id', 'updated_at', 'id'])
        .execute();
      await db.schema
        .createTable('session_messages')
        .addColumn('session_id', 'text', (column) => column.notNull().references('sessions.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (column) => column.notNull())
        .addColumn('message', 'text', (column) => column.notNull())
        .addColumn('created_at', 'double precision', (column) => column.notNull())
        .addPrimaryKeyConstraint('session_messages_pk', ['session_id', 'seq'])
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('session_messages').ifExists().execute();
      await db.schema.dropTable('sessions').ifExists().execute();
    },
  },
  // A session remembers its agent: later turns run it without naming it again.
  '2026-12-06a-session-agent': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('sessions').addColumn('agent', 'text').execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.alterTable('sessions').dropColumn('agent').execute();
    },
  },
  // OpenAI Responses API answers, each a point in a session (GET /v1/responses/{id}, previous_response_id).
  '2026-12-06b-openai-responses': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('openai_responses')
        .addColumn('id', 'text', (column) => column.primaryKey())
        .addColumn('session_id', 'text', (column) => column.notNull().references('sessions.id').onDelete('cascade'))
        .addColumn('next_seq', 'integer', (column) => column.notNull())
        .addColumn('body', 'text', (column) => column.notNull())
        .addColumn('created_at', 'double precision', (column) => column.notNull())
        .execute();
      // Deleting a session cascades here: without an index each delete would scan the table.
      await db.schema.createIndex('openai_responses_session').on('openai_responses').column('session_id').execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('openai_responses').ifExists().execute();
    },
  },
};
