import type { Static } from 'typebox';
import { Type } from '../json-schema.js';
import { MAX_ACCESS_LIST_ENTRIES } from '../sessions/index.js';

/** Limits of the paginated reads. */
export const MESSAGE_PAGE = { default: 50, max: 200 } as const;
export const SESSION_PAGE = { default: 20, max: 100 } as const;

// Query strings arrive as text and Ajv does not coerce here: numbers are checked as digits, then parsed.
const digits = (description: string) => Type.String({ pattern: '^[0-9]{1,15}$', description });

export const SessionParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, description: 'The session id' }),
});

const UserId = Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
const UserList = (description: string) => Type.Array(UserId, { maxItems: MAX_ACCESS_LIST_ENTRIES, description });

export const AccessPatchBody = Type.Object(
  {
    is_public: Type.Optional(Type.Boolean()),
    whitelist: Type.Optional(UserList('Replace the whitelist')),
    blacklist: Type.Optional(UserList('Replace the blacklist')),
    add_to_whitelist: Type.Optional(UserList('Add these users to the whitelist')),
    remove_from_whitelist: Type.Optional(UserList('Remove these users from the whitelist')),
    add_to_blacklist: Type.Optional(UserList('Add these users to the blacklist')),
    remove_from_blacklist: Type.Optional(UserList('Remove these users from the blacklist')),
  },
  { additionalProperties: false, description: 'Replace a list, or change it incrementally; not both on the same list' },
);

const Access = Type.Object(
  {
    owner_id: Type.Union([Type.String(), Type.Null()]),
    is_public: Type.Boolean(),
    whitelist: Type.Array(Type.String()),
    blacklist: Type.Array(Type.String()),
  },
  { description: 'Shown to the owner only' },
);

const sessionFields = {
  session_id: Type.String(),
  message_count: Type.Integer(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  model: Type.Union([Type.String(), Type.Null()]),
  agent: Type.Optional(Type.String({ description: 'The named agent the session belongs to (absent: none)' })),
  metadata: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
};

export const SessionResponse = Type.Object({
  ...sessionFields,
  access: Type.Optional(Access),
});

export const AccessResponse = Type.Object({
  session_id: Type.String(),
  is_public: Type.Boolean(),
  whitelist: Type.Array(Type.String()),
  blacklist: Type.Array(Type.String()),
});

export const DeleteResponse = Type.Object({ status: Type.Literal('deleted'), session_id: Type.String() });

export const MessagesQuery = Type.Object(
  {
    limit: Type.Optional(digits(`1-${MESSAGE_PAGE.max}, default ${MESSAGE_PAGE.default}`)),
    before: Type.Optional(digits('Only messages with a smaller seq (the page ends right before it)')),
    after: Type.Optional(digits('Only messages with a larger seq (the page starts right after it)')),
  },
  { additionalProperties: false },
);

const ToolCall = Type.Object({
  id: Type.String(),
  type: Type.Literal('function'),
  function: Type.Object({ name: Type.String(), arguments: Type.String() }),
});

export const MessagesResponse = Type.Object({
  session_id: Type.String(),
  message_count: Type.Integer(),
  messages: Type.Array(
    Type.Object({
      seq: Type.Integer({ description: 'Position in the session, from 1' }),
      role: Type.String(),
      content: Type.Union([Type.String(), Type.Null()]),
      name: Type.Optional(Type.String()),
      tool_calls: Type.Optional(Type.Array(ToolCall)),
      tool_call_id: Type.Optional(Type.String()),
      created_at: Type.String({ format: 'date-time' }),
    }),
  ),
  has_more: Type.Boolean({ description: 'More messages exist in the paging direction (older, or newer with "after")' }),
});

export const SessionsQuery = Type.Object(
  {
    limit: Type.Optional(digits(`1-${SESSION_PAGE.max}, default ${SESSION_PAGE.default}`)),
    cursor: Type.Optional(Type.String({ maxLength: 512, description: 'next_cursor from the previous page' })),
  },
  { additionalProperties: false },
);

export const SessionsResponse = Type.Object({
  sessions: Type.Array(Type.Object(sessionFields)),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as cursor for the next (older) page; null at the end' }),
});

export type AccessPatchBody = Static<typeof AccessPatchBody>;
