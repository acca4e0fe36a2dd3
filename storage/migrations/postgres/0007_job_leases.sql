-- PostgreSQL twin of ../0007_job_leases.sql: which process holds a job in flight, and until when.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION;
