-- The chat. Members, authors and readers are identity accounts, referenced
-- by id only: modules never join each other's tables.
-- A room's messages are numbered by `room_offset`, 1, 2, 3… with no gaps:
-- each send takes the next number from `last_offset` in its transaction,
-- which holds the room's row until it commits, so numbers are handed out
-- in commit order whichever node sends.
CREATE TABLE chat_rooms (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- public | private | invite_only | direct
    kind TEXT NOT NULL,
    -- Changes only if the offsets start over: resumes compare it.
    epoch TEXT NOT NULL,
    last_offset INTEGER NOT NULL DEFAULT 0,
    -- Direct messages: both members' ids, smaller first, so one pair has one room.
    direct_key TEXT,
    created_by BLOB NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT chat_rooms_direct_key UNIQUE (direct_key)
);
CREATE INDEX chat_rooms_listed_idx ON chat_rooms (kind, name);

CREATE TABLE chat_members (
    room_id BLOB NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL,
    -- owner | moderator | member
    role TEXT NOT NULL,
    -- joined | invited | banned
    state TEXT NOT NULL,
    muted INTEGER NOT NULL DEFAULT 0,
    -- The newest offset the user has read; only moves forward.
    read_offset INTEGER NOT NULL DEFAULT 0,
    since TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX chat_members_user_idx ON chat_members (user_id, room_id);

CREATE TABLE chat_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id BLOB NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    room_offset INTEGER NOT NULL,
    author_id BLOB NOT NULL,
    -- Empty once deleted (the row stays as a tombstone).
    body TEXT NOT NULL,
    body_html TEXT NOT NULL,
    reply_to INTEGER REFERENCES chat_messages (id) ON DELETE SET NULL,
    -- The client's idempotency key: one message per author, room and nonce.
    nonce TEXT,
    created_at TEXT NOT NULL,
    edited_at TEXT,
    deleted_at TEXT,
    CONSTRAINT chat_messages_offset_key UNIQUE (room_id, room_offset),
    CONSTRAINT chat_messages_nonce_key UNIQUE (room_id, author_id, nonce)
);

CREATE TABLE chat_reactions (
    message_id INTEGER NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL,
    emoji TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

-- Who a message mentions, for mention counts after the read offset.
CREATE TABLE chat_mentions (
    user_id BLOB NOT NULL,
    room_id BLOB NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    room_offset INTEGER NOT NULL,
    message_id INTEGER NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, room_id, room_offset)
);
