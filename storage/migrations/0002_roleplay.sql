-- Roleplay: which persona speaks where, what it said, and the webhook it speaks through.
CREATE TABLE roleplay_sessions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id         INTEGER NOT NULL,
    channel_id       INTEGER NOT NULL,  -- the channel or thread the persona speaks in
    persona_id       INTEGER NOT NULL REFERENCES personas(id) ON DELETE CASCADE,
    mode             TEXT    NOT NULL,  -- mention | always
    started_by       INTEGER NOT NULL,
    started_at       REAL    NOT NULL,
    last_activity_at REAL    NOT NULL,
    ended_at         REAL,
    end_reason       TEXT
);

-- One active session per persona per channel; ended sessions are kept as history.
CREATE UNIQUE INDEX roleplay_active_persona ON roleplay_sessions(channel_id, persona_id) WHERE ended_at IS NULL;
CREATE INDEX roleplay_active_guild ON roleplay_sessions(guild_id) WHERE ended_at IS NULL;

-- Which webhook message was whose, so a persona's own lines are its assistant turns.
CREATE TABLE persona_messages (
    message_id  INTEGER PRIMARY KEY,
    channel_id  INTEGER NOT NULL,
    persona_id  INTEGER NOT NULL,
    session_id  INTEGER NOT NULL,
    created_at  REAL    NOT NULL
);

-- One webhook per channel (threads post through their parent's), reused by every persona.
CREATE TABLE channel_webhooks (
    channel_id     INTEGER PRIMARY KEY,
    webhook_id     INTEGER NOT NULL,
    webhook_token  TEXT    NOT NULL
);

-- What a server's admins chose; a missing row means the defaults.
CREATE TABLE guild_roleplay_settings (
    guild_id          INTEGER PRIMARY KEY,
    starter_role_id   INTEGER,
    allowed_channels  TEXT  -- JSON list of channel ids; NULL: every channel
);

-- Who asked, by name, so lists and autocomplete can say it without a member lookup.
ALTER TABLE jobs ADD COLUMN user_name TEXT;
ALTER TABLE personas ADD COLUMN creator_name TEXT;
