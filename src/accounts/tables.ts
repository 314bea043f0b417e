import type { Kysely, Migration } from 'kysely';

/**
 * Times are epoch milliseconds in `double precision` (exact to 2^53 and a plain number from both
 * drivers; pg returns bigint as a string). Flags are 0/1 integers, since SQLite has no boolean.
 */
export interface UserRow {
  id: string;
  email: string;
  password_hash: string | null;
  email_verified: number;
  google_id: string | null;
  display_name: string | null;
  is_admin: number;
  disabled: number;
  /** Raised by a password reset: access tokens carry it, so older ones stop working at once. */
  token_version: number;
  created_at: number;
  updated_at: number;
}

/** One login (or Google sign-in) and every refresh token rotated from it. */
export interface RefreshFamilyRow {
  id: string;
  user_id: string;
  created_at: number;
  /** Absolute end of the family: rotating never extends it. */
  expires_at: number;
  revoked_at: number | null;
}

export interface RefreshTokenRow {
  id: string;
  family_id: string;
  parent_id: string | null;
  /** SHA-256 of the opaque token; the token itself is never stored. */
  token_hash: string;
  created_at: number;
  /** When it was exchanged for its successor; null while it is the family's live token. */
  rotated_at: number | null;
}

/** One live code per purpose and email: issuing a new one replaces the old. */
export interface EmailCodeRow {
  purpose: string;
  email: string;
  /** HMAC-SHA256(server key, purpose‖email‖code), hex. */
  code_hmac: string;
  expires_at: number;
  attempts: number;
  consumed_at: number | null;
  created_at: number;
}

declare module '../db/tables.js' {
  interface Tables {
    users: UserRow;
    refresh_families: RefreshFamilyRow;
    refresh_tokens: RefreshTokenRow;
    email_codes: EmailCodeRow;
  }
}

// Migrations see an untyped database: they must keep working whatever the types say later.
const createAccounts: Migration = {
  async up(db: Kysely<any>) {
    const time = 'double precision';
    await db.schema
      .createTable('users')
      .addColumn('id', 'varchar(64)', (column) => column.primaryKey())
      .addColumn('email', 'varchar(254)', (column) => column.notNull().unique())
      .addColumn('password_hash', 'text')
      .addColumn('email_verified', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('google_id', 'varchar(255)', (column) => column.unique())
      .addColumn('display_name', 'varchar(100)')
      .addColumn('is_admin', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('disabled', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('token_version', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('created_at', time, (column) => column.notNull())
      .addColumn('updated_at', time, (column) => column.notNull())
      .execute();
    await db.schema
      .createTable('refresh_families')
      .addColumn('id', 'varchar(64)', (column) => column.primaryKey())
      .addColumn('user_id', 'varchar(64)', (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('created_at', time, (column) => column.notNull())
      .addColumn('expires_at', time, (column) => column.notNull())
      .addColumn('revoked_at', time)
      .execute();
    await db.schema.createIndex('refresh_families_user_idx').on('refresh_families').column('user_id').execute();
    await db.schema
      .createTable('refresh_tokens')
      .addColumn('id', 'varchar(64)', (column) => column.primaryKey())
      .addColumn('family_id', 'varchar(64)', (column) => column.notNull().references('refresh_families.id').onDelete('cascade'))
      .addColumn('parent_id', 'varchar(64)')
      .addColumn('token_hash', 'varchar(64)', (column) => column.notNull().unique())
      .addColumn('created_at', time, (column) => column.notNull())
      .addColumn('rotated_at', time)
      .execute();
    await db.schema.createIndex('refresh_tokens_family_idx').on('refresh_tokens').column('family_id').execute();
    await db.schema
      .createTable('email_codes')
      .addColumn('purpose', 'varchar(32)', (column) => column.notNull())
      .addColumn('email', 'varchar(254)', (column) => column.notNull())
      .addColumn('code_hmac', 'varchar(64)', (column) => column.notNull())
      .addColumn('expires_at', time, (column) => column.notNull())
      .addColumn('attempts', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('consumed_at', time)
      .addColumn('created_at', time, (column) => column.notNull())
      .addPrimaryKeyConstraint('email_codes_pk', ['purpose', 'email'])
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const table of ['email_codes', 'refresh_tokens', 'refresh_families', 'users']) await db.schema.dropTable(table).execute();
  },
};

export const accountMigrations: Record<string, Migration> = {
  '2026-11-28b-accounts': createAccounts,
};
