-- Audit shipping: one row per sink (CloudWatch log stream, stdout) with the last journal seq it
-- has acknowledged, so shipping resumes there after a restart or a crash; and the events a sink
-- held back (too old or too new for the service, or refused by it). Same one dialect as 0001.

CREATE TABLE sink_checkpoints (
    sink            TEXT PRIMARY KEY,       -- cloudwatch:GROUP:STREAM, or stdout
    seq             BIGINT NOT NULL,        -- every record up to here is delivered or quarantined
    updated_at      BIGINT NOT NULL,
    delivered       BIGINT NOT NULL DEFAULT 0,  -- events accepted by the service, all time
    rejected        BIGINT NOT NULL DEFAULT 0,  -- events refused by the service, all time
    quarantined     BIGINT NOT NULL DEFAULT 0,  -- events held back before sending, all time
    last_error      TEXT,
    last_error_at   BIGINT
);

CREATE TABLE sink_quarantine (
    sink        TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    reason      TEXT NOT NULL,              -- too_old, too_new, expired, invalid
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (sink, seq)
);
