-- Casts: a whole population generated from one prompt, saved as personas of the guild.
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'enhancement';  -- enhancement | population
ALTER TABLE jobs ADD COLUMN cast_size INTEGER;

CREATE TABLE casts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    name_key    TEXT    NOT NULL,
    job_id      INTEGER NOT NULL UNIQUE REFERENCES jobs(id),  -- saved once per population job
    creator_id  INTEGER NOT NULL,
    prompt      TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    UNIQUE (guild_id, name_key)
);

CREATE TABLE cast_members (
    cast_id     INTEGER NOT NULL REFERENCES casts(id) ON DELETE CASCADE,
    persona_id  INTEGER NOT NULL REFERENCES personas(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    PRIMARY KEY (cast_id, persona_id)
);
