-- PostgreSQL twin of ../0008_natural.sql: natural roleplay mode's threads, deliveries, usage and notices.
-- Text keys are COLLATE "C": they are opaque ids and ISO days, compared byte by byte as SQLite does,
-- so ranges (pruning) and key order (copy-db's checksums) agree whatever the database's locale.

CREATE TABLE natural_threads (
    thread_id   TEXT COLLATE "C" PRIMARY KEY,
    guild_id    BIGINT NOT NULL,
    channel_id  BIGINT NOT NULL,
    persona_id  BIGINT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    CONSTRAINT natural_threads_persona_channel UNIQUE (persona_id, channel_id)
);

CREATE TABLE natural_deliveries (
    message_id          TEXT COLLATE "C" PRIMARY KEY,
    thread_id           TEXT   NOT NULL,
    discord_message_id  BIGINT,
    claimed_at          DOUBLE PRECISION NOT NULL
);
CREATE INDEX natural_deliveries_claimed ON natural_deliveries(claimed_at);

CREATE TABLE natural_planned (
    piece_key   TEXT COLLATE "C" PRIMARY KEY,
    thread_id   TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    deliver_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX natural_planned_thread ON natural_planned(thread_id, deliver_at);

CREATE TABLE natural_usage (
    guild_id    BIGINT  NOT NULL,
    persona_id  BIGINT  NOT NULL,
    day         TEXT COLLATE "C" NOT NULL,
    calls       INTEGER NOT NULL,
    PRIMARY KEY (guild_id, persona_id, day)
);
CREATE INDEX natural_usage_day_guild ON natural_usage(day, guild_id);

CREATE TABLE natural_notices (
    day         TEXT COLLATE "C" NOT NULL,
    channel_id  BIGINT NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (day, channel_id, kind)
);
