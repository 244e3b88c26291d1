-- sallyport's control-plane schema. One dialect for SQLite and PostgreSQL: TEXT and BIGINT
-- only, times in milliseconds since the Unix epoch, identifiers as text.

CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    roles       TEXT NOT NULL,              -- comma-separated: admin,engineer,auditor
    state       TEXT NOT NULL CHECK (state IN ('active', 'disabled')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE user_groups (
    user_name   TEXT NOT NULL REFERENCES users (name),
    group_name  TEXT NOT NULL,
    PRIMARY KEY (user_name, group_name)
);
CREATE INDEX user_groups_group ON user_groups (group_name);

CREATE TABLE ssh_keys (
    fingerprint TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users (name),
    public_key  TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    comment     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX ssh_keys_user ON ssh_keys (user_name);

CREATE TABLE targets (
    name        TEXT PRIMARY KEY,
    address     TEXT NOT NULL,
    host_key    TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    subject         TEXT NOT NULL,          -- user, or @group
    object          TEXT NOT NULL,          -- target name, or CIDR
    protocols       TEXT NOT NULL,          -- comma-separated
    ports           TEXT NOT NULL,
    logins          TEXT NOT NULL,          -- comma-separated, may be empty
    not_before      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    reason          TEXT NOT NULL,
    granted_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoked_by      TEXT,
    expiry_recorded BIGINT NOT NULL DEFAULT 0,
    CHECK (expires_at > not_before)
);
CREATE INDEX grants_subject ON grants (subject);
CREATE INDEX grants_object ON grants (object);
CREATE INDEX grants_expires ON grants (expires_at);

-- The audit journal: append-only, hash-chained (see core/src/audit/chain.rs).
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    time_ms     BIGINT NOT NULL,
    event       TEXT NOT NULL,
    code        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    user_name   TEXT,
    target      TEXT,
    session     TEXT,
    source      TEXT,
    data        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_time ON audit_events (time_ms);
CREATE INDEX audit_user_time ON audit_events (user_name, time_ms);
CREATE INDEX audit_actor_time ON audit_events (actor, time_ms);
CREATE INDEX audit_event_time ON audit_events (event, time_ms);
CREATE INDEX audit_target_time ON audit_events (target, time_ms);
CREATE INDEX audit_session ON audit_events (session);

-- The end of the chain; one row. Appending locks it, so the chain is linear across writers.
CREATE TABLE journal_head (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL
);
INSERT INTO journal_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
