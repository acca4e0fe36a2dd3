-- A job in flight is held by one bot process at a time: which one, and until when (its lease).
-- A process renews its leases while it lives; a job whose lease ran out is taken over by another.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
