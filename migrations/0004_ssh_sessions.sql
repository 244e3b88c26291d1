-- SSH sessions and their recordings. Same one dialect as 0001 (TEXT and BIGINT, times in
-- milliseconds since the Unix epoch).
--
-- One row per authenticated SSH session, written when it starts and completed when it ends,
-- by whichever gateway instance runs it (so several gateways on one PostgreSQL list each
-- other's sessions). `ended_at` is NULL while the session is live.

CREATE TABLE ssh_sessions (
    id          TEXT PRIMARY KEY,               -- the session id of the ssh.session.* events
    instance    TEXT NOT NULL,                  -- the gateway instance running it
    user_name   TEXT NOT NULL,
    source      TEXT NOT NULL,                  -- the client's address
    mode        TEXT NOT NULL CHECK (mode IN ('jump', 'proxy')),
    target      TEXT,                           -- proxy mode: the target
    login       TEXT,                           -- proxy mode: the remote login
    client      TEXT NOT NULL,                  -- the client's SSH version string
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    end_reason  TEXT,
    recorded    BIGINT NOT NULL DEFAULT 0       -- 1 once a recording chunk is stored
);
CREATE INDEX ssh_sessions_started ON ssh_sessions (started_at);
CREATE INDEX ssh_sessions_user ON ssh_sessions (user_name, started_at);
CREATE INDEX ssh_sessions_live ON ssh_sessions (ended_at, instance);

-- Recordings: asciicast v2 text in chunks, each sealed (XChaCha20-Poly1305 under a key derived
-- from the gateway's recording key; see gateway/src/ssh/recording/seal.rs) and stored as
-- base64. The chunk's session, channel and index are bound into its authentication tag.
CREATE TABLE recordings (
    session_id  TEXT NOT NULL,
    channel     BIGINT NOT NULL,
    chunk       BIGINT NOT NULL,                -- 0, 1, 2, … without gaps
    written_at  BIGINT NOT NULL,
    sealed      TEXT NOT NULL,
    PRIMARY KEY (session_id, channel, chunk)
);
