-- One hash chain per gateway instance (docs/ha.md): appends from different gateways no longer
-- take turns on one head row. Same one dialect as 0001.
--
-- audit_events.seq stays the record's position in the journal across chains (primary key;
-- search, tail and export page on it). chain names the chain ('' for the shared chain every
-- record before this migration belongs to) and chain_seq is the record's place in it, the seq
-- its hash covers. For the existing records the two are the same.

ALTER TABLE audit_events ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN chain_seq BIGINT NOT NULL DEFAULT 0;
UPDATE audit_events SET chain_seq = seq;
CREATE UNIQUE INDEX audit_chain_seq ON audit_events (chain, chain_seq);

-- Each chain's end; an append locks only its own chain's row. The shared chain's head moves
-- here from journal_head.
CREATE TABLE chain_heads (
    chain   TEXT PRIMARY KEY,
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL
);
INSERT INTO chain_heads (chain, seq, hash) SELECT '', seq, hash FROM journal_head;
DROP TABLE journal_head;

-- Shipping checkpoints and quarantine lists per (sink, chain): a chain's own sequence is the
-- only order its records commit in.
CREATE TABLE sink_checkpoints_v2 (
    sink            TEXT NOT NULL,
    chain           TEXT NOT NULL DEFAULT '',
    seq             BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered       BIGINT NOT NULL DEFAULT 0,
    rejected        BIGINT NOT NULL DEFAULT 0,
    quarantined     BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_error_at   BIGINT,
    PRIMARY KEY (sink, chain)
);
INSERT INTO sink_checkpoints_v2
    (sink, chain, seq, updated_at, delivered, rejected, quarantined, last_error, last_error_at)
SELECT sink, '', seq, updated_at, delivered, rejected, quarantined, last_error, last_error_at
FROM sink_checkpoints;
DROP TABLE sink_checkpoints;
ALTER TABLE sink_checkpoints_v2 RENAME TO sink_checkpoints;

CREATE TABLE sink_quarantine_v2 (
    sink        TEXT NOT NULL,
    chain       TEXT NOT NULL DEFAULT '',
    seq         BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (sink, chain, seq)
);
INSERT INTO sink_quarantine_v2 (sink, chain, seq, reason, recorded_at)
SELECT sink, '', seq, reason, recorded_at FROM sink_quarantine;
DROP TABLE sink_quarantine;
ALTER TABLE sink_quarantine_v2 RENAME TO sink_quarantine;
