-- A job whose latest reply Discord took nowhere: shown again when the bot starts.
ALTER TABLE jobs ADD COLUMN reply_stale INTEGER NOT NULL DEFAULT 0;
-- Start-up looks for them; almost none are, so the index holds only those.
CREATE INDEX jobs_reply_stale ON jobs(id) WHERE reply_stale = 1;
