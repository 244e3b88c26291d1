-- Several gateways on one PostgreSQL: each audit record names the gateway instance that
-- journaled it, so shippers label every event with its origin (records from before this
-- migration have none and are labelled with the shipping gateway). Not part of the hash.
-- Same one dialect as 0001.

ALTER TABLE audit_events ADD COLUMN instance TEXT;
