-- Game night: what a persona brings to a table (talkativeness, NSFW flag, its card's whole character,
-- its avatar) and what a channel keeps between sessions (its scene, its last recap), with the chat
-- model's token usage per server per day.

-- 0 (speaks only when called) to 100 (takes most turns): who answers a message addressed to nobody.
ALTER TABLE personas ADD COLUMN talkativeness INTEGER NOT NULL DEFAULT 50;
-- An NSFW persona speaks only in age-restricted channels.
ALTER TABLE personas ADD COLUMN nsfw INTEGER NOT NULL DEFAULT 0;
-- An imported card's own `data` object, JSON, kept whole: greetings, lorebook, examples and every
-- field another tool wrote, so export gives the card back unchanged. NULL: not from a card.
ALTER TABLE personas ADD COLUMN card_json TEXT;

-- A persona's picture. The bytes are ours (an upload, a card's PNG); Discord is shown them at a
-- URL that does not expire: the avatar of a webhook the bot keeps for it (bot/avatars.py).
CREATE TABLE persona_avatars (
    persona_id         INTEGER PRIMARY KEY REFERENCES personas(id) ON DELETE CASCADE,
    image              BLOB,              -- NULL for a link the member gave, shown as it is
    content_type       TEXT    NOT NULL,
    source             TEXT    NOT NULL,  -- upload | link | card
    link               TEXT,              -- the https link of a `link` avatar
    hosted_url         TEXT,              -- where Discord serves the image now (NULL: not hosted yet)
    holder_webhook_id  INTEGER,           -- the webhook whose avatar it is
    updated_at         REAL    NOT NULL
);

-- A channel's scene: where we are, what is happening, who is present. Every persona there sees it.
CREATE TABLE channel_scenes (
    channel_id  INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    set_by      INTEGER NOT NULL,
    set_at      REAL    NOT NULL
);

-- The last "previously on…" of a channel: the next session there starts with it.
CREATE TABLE channel_recaps (
    channel_id  INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    written_by  INTEGER NOT NULL,  -- who asked for it
    written_at  REAL    NOT NULL
);

-- Chat-model tokens per guild, persona and UTC day: ROLEPLAY_DAILY_TOKENS_PER_GUILD and /roleplay status.
CREATE TABLE chat_usage (
    guild_id    INTEGER NOT NULL,
    persona_id  INTEGER NOT NULL,
    day         TEXT    NOT NULL,  -- 'YYYY-MM-DD', UTC
    tokens      INTEGER NOT NULL,
    PRIMARY KEY (guild_id, persona_id, day)
);
CREATE INDEX chat_usage_day_guild ON chat_usage(day, guild_id);

-- What a channel was told once a day ('out_of_credits', 'daily_cap', 'token_cap'): natural mode's
-- notices table, now that the token cap tells channels too, under a name that says so.
CREATE TABLE channel_notices (
    day         TEXT    NOT NULL,
    channel_id  INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    PRIMARY KEY (day, channel_id, kind)
);
INSERT INTO channel_notices (day, channel_id, kind) SELECT day, channel_id, kind FROM natural_notices;
DROP TABLE natural_notices;
