-- PostgreSQL twin of ../0009_game_night.sql: talkativeness, NSFW, cards, avatars, scenes, recaps, token usage.

ALTER TABLE personas ADD COLUMN talkativeness INTEGER NOT NULL DEFAULT 50;
ALTER TABLE personas ADD COLUMN nsfw INTEGER NOT NULL DEFAULT 0;
ALTER TABLE personas ADD COLUMN card_json TEXT;

CREATE TABLE persona_avatars (
    persona_id         BIGINT PRIMARY KEY REFERENCES personas(id) ON DELETE CASCADE,
    image              BYTEA,
    content_type       TEXT   NOT NULL,
    source             TEXT   NOT NULL,
    link               TEXT,
    hosted_url         TEXT,
    holder_webhook_id  BIGINT,
    updated_at         DOUBLE PRECISION NOT NULL
);

CREATE TABLE channel_scenes (
    channel_id  BIGINT PRIMARY KEY,
    guild_id    BIGINT NOT NULL,
    text        TEXT   NOT NULL,
    set_by      BIGINT NOT NULL,
    set_at      DOUBLE PRECISION NOT NULL
);

CREATE TABLE channel_recaps (
    channel_id  BIGINT PRIMARY KEY,
    guild_id    BIGINT NOT NULL,
    text        TEXT   NOT NULL,
    written_by  BIGINT NOT NULL,
    written_at  DOUBLE PRECISION NOT NULL
);

CREATE TABLE chat_usage (
    guild_id    BIGINT NOT NULL,
    persona_id  BIGINT NOT NULL,
    day         TEXT COLLATE "C" NOT NULL,
    tokens      BIGINT NOT NULL,
    PRIMARY KEY (guild_id, persona_id, day)
);
CREATE INDEX chat_usage_day_guild ON chat_usage(day, guild_id);

-- What a channel was told once a day ('out_of_credits', 'daily_cap', 'token_cap'): natural mode's
-- notices table, now that the token cap tells channels too, under a name that says so.
CREATE TABLE channel_notices (
    day         TEXT COLLATE "C" NOT NULL,
    channel_id  BIGINT  NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (day, channel_id, kind)
);
INSERT INTO channel_notices (day, channel_id, kind) SELECT day, channel_id, kind FROM natural_notices;
DROP TABLE natural_notices;
