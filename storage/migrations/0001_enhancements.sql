-- Jobs: one row per /enhance request, written before the reply says "pending".
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id          INTEGER NOT NULL,
    channel_id        INTEGER NOT NULL,
    user_id           INTEGER NOT NULL,
    sketch            TEXT    NOT NULL,
    grounding         TEXT    NOT NULL,
    requested_name    TEXT,
    state             TEXT    NOT NULL,  -- queued, pending, running, stalled, succeeded, failed
    enhancement_id    TEXT    UNIQUE,    -- set once Humalike accepted the job
    error_code        TEXT,
    error_detail      TEXT,
    application_id    INTEGER,
    interaction_token TEXT,
    token_expires_at  REAL,
    message_id        INTEGER,
    created_at        REAL    NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    deadline_at       REAL,
    timed_out         INTEGER NOT NULL DEFAULT 0,
    persona_id        INTEGER,
    retry_of          INTEGER UNIQUE REFERENCES jobs(id)  -- one retry per failed job
);

CREATE INDEX jobs_unfinished ON jobs(state) WHERE state IN ('queued', 'pending', 'running', 'stalled');
CREATE INDEX jobs_user_unfinished ON jobs(user_id, state);

-- Personas: saved once per enhancement, named uniquely (case-insensitively) per guild.
CREATE TABLE personas (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id        INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    name_key        TEXT    NOT NULL,
    creator_id      INTEGER NOT NULL,
    enhancement_id  TEXT    UNIQUE,
    humalike_persona_id TEXT,
    fields_json     TEXT    NOT NULL,
    system_prompt   TEXT    NOT NULL,
    markdown        TEXT    NOT NULL,
    sketch          TEXT    NOT NULL,
    grounding       TEXT    NOT NULL,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL,
    UNIQUE (guild_id, name_key)
);

CREATE INDEX personas_guild_created ON personas(guild_id, created_at DESC);
