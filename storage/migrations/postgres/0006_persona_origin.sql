-- PostgreSQL twin of ../0006_persona_origin.sql: where an imported persona came from.
ALTER TABLE personas ADD COLUMN origin TEXT;
