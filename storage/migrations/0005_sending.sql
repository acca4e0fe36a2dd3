-- A job is 'queued' until its start is about to go out, then 'sending' until Humalike confirms it:
-- after a stop, a queued job was never sent (it is started after start-up) and a sending one may
-- have been (it is reported, never resent). Before this, 'queued' meant what 'sending' means now.
UPDATE jobs SET state = 'sending' WHERE state = 'queued';

-- The unfinished jobs' index lists the states in the order the queries do, so it is still used.
DROP INDEX jobs_unfinished;
CREATE INDEX jobs_unfinished ON jobs(state) WHERE state IN ('queued', 'sending', 'pending', 'running', 'stalled');
