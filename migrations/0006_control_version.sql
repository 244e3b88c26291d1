-- Several gateways on one PostgreSQL: a counter that every control-plane change (admin change,
-- recorded grant expiry) moves in its own transaction. A gateway remembers the value its policy
-- snapshot was built from; a NOTIFY that carries a newer value, or a periodic resync that reads
-- one, makes it rebuild. One row; same one dialect as 0001.

CREATE TABLE control_version (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    seq     BIGINT NOT NULL
);
INSERT INTO control_version (id, seq) VALUES (1, 0);
