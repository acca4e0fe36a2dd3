-- PostgreSQL twin of ../0005_sending.sql: 'queued' until the start goes out, then 'sending'.
UPDATE jobs SET state = 'sending' WHERE state = 'queued';

DROP INDEX jobs_unfinished;
CREATE INDEX jobs_unfinished ON jobs(state) WHERE state IN ('queued', 'sending', 'pending', 'running', 'stalled');
