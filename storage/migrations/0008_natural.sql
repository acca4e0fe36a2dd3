-- Natural roleplay mode: personas that keep time through Humalike's turn-taking API.
-- No foreign keys to personas: usage is billing history that outlives a deleted persona, and a
-- deleted persona's threads are forgotten by the bot (NaturalStore.forget_threads).

-- One turn-taking thread per persona per channel. The id is ours (a UUID), so after a restart, a
-- dropped socket or an expired connect_url the same thread is re-opened, never a new one made.
CREATE TABLE natural_threads (
    thread_id   TEXT    PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    channel_id  INTEGER NOT NULL,
    persona_id  INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    UNIQUE (persona_id, channel_id)  -- also finds a persona's threads when it is deleted
);

-- The agent's paced messages, each posted exactly once: a row is claimed before the webhook post,
-- so a replay after a reconnect, or the `scheduled` fallback racing the socket, posts nothing twice.
CREATE TABLE natural_deliveries (
    message_id          TEXT    PRIMARY KEY,  -- Humalike's id of the message
    thread_id           TEXT    NOT NULL,
    discord_message_id  INTEGER,              -- NULL until the webhook post succeeded
    claimed_at          REAL    NOT NULL
);
CREATE INDEX natural_deliveries_claimed ON natural_deliveries(claimed_at);  -- pruning

-- The pieces a reply was paced into, as `respond` scheduled them: delivered from here when the
-- socket misses them (down, or the process restarted mid-reply), claimed like any other piece.
CREATE TABLE natural_planned (
    piece_key   TEXT    PRIMARY KEY,  -- thread / turn_epoch / position: the key its delivery claims
    thread_id   TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    deliver_at  REAL    NOT NULL
);
CREATE INDEX natural_planned_thread ON natural_planned(thread_id, deliver_at);

-- Billable turn-taking calls per guild, persona and UTC day: the daily cap and /roleplay status.
CREATE TABLE natural_usage (
    guild_id    INTEGER NOT NULL,
    persona_id  INTEGER NOT NULL,
    day         TEXT    NOT NULL,  -- 'YYYY-MM-DD', UTC: sorts as it dates
    calls       INTEGER NOT NULL,
    PRIMARY KEY (guild_id, persona_id, day)
);
-- A guild's total for a day (read at every billable call), and pruning of old days.
CREATE INDEX natural_usage_day_guild ON natural_usage(day, guild_id);

-- What a channel was told once a day ('out_of_credits', 'daily_cap'), so it is not told again.
CREATE TABLE natural_notices (
    day         TEXT    NOT NULL,  -- 'YYYY-MM-DD', UTC; first, so pruning old days uses the key
    channel_id  INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    PRIMARY KEY (day, channel_id, kind)
);
