-- PostgreSQL twin of ../0004_reply_stale.sql.
ALTER TABLE jobs ADD COLUMN reply_stale INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_reply_stale ON jobs(id) WHERE reply_stale = 1;
