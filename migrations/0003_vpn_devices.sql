-- WireGuard devices enrolled by engineers. Same one dialect as 0001 (TEXT and BIGINT, times in
-- milliseconds since the Unix epoch).
--
-- No secret is stored here: the preshared key is derived by the gateway from its WireGuard key,
-- the device id and `psk_epoch` (HKDF-SHA256), so only the epoch and its expiry are kept.
-- A device's VPN address is stable and never handed to another device, even after revocation
-- (the unique index holds for revoked rows too), so an old audit record keeps naming one device.

CREATE TABLE vpn_devices (
    id              TEXT PRIMARY KEY,           -- UUID
    user_name       TEXT NOT NULL REFERENCES users (name),
    name            TEXT NOT NULL,
    public_key      TEXT NOT NULL,              -- the device's x25519 public key, base64
    address         TEXT NOT NULL,              -- its VPN address, e.g. 100.64.0.2
    psk_epoch       BIGINT NOT NULL,
    psk_expires_at  BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoked_by      TEXT
);
CREATE UNIQUE INDEX vpn_devices_public_key ON vpn_devices (public_key);
CREATE UNIQUE INDEX vpn_devices_address ON vpn_devices (address);
CREATE INDEX vpn_devices_user ON vpn_devices (user_name);
