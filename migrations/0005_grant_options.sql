-- Grant options (SSH features beyond reaching the target; both off unless granted) and the
-- login challenges already answered, so a challenge is single use across gateways. Same one
-- dialect as 0001.

ALTER TABLE grants ADD COLUMN agent_forwarding BIGINT NOT NULL DEFAULT 0;
ALTER TABLE grants ADD COLUMN port_forwarding BIGINT NOT NULL DEFAULT 0;

CREATE TABLE login_challenges_used (
    nonce       TEXT PRIMARY KEY,           -- the challenge's random part, base64url
    user_name   TEXT NOT NULL,
    expires_at  BIGINT NOT NULL             -- after this the MAC refuses it anyway; row may go
);
CREATE INDEX login_challenges_used_expires ON login_challenges_used (expires_at);
