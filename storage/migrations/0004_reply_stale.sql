-- A job whose latest reply Discord took nowhere: shown again when the bot starts.
ALTER TABLE jobs ADD COLUMN reply_stale INTEGER NOT NULL DEFAULT 0;
