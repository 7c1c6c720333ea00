-- Timestamps are RFC 3339 UTC text with microseconds ("2026-01-02T03:04:05.000006Z"),
-- which sorts in time order.

CREATE TABLE topics (
    topic_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN
                         ('pending', 'approved', 'active', 'inactive', 'rejected', 'deleted')),
    partitions         INTEGER NOT NULL CHECK (partitions BETWEEN 1 AND 1000),
    replication_factor INTEGER NOT NULL CHECK (replication_factor >= 1),
    description        TEXT    NOT NULL DEFAULT '',
    data_type          TEXT    NOT NULL,
    rate_per_second    REAL    CHECK (rate_per_second IS NULL OR rate_per_second > 0),
    created_by         TEXT    NOT NULL,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    approved_at        TEXT,
    activated_at       TEXT,
    deactivated_at     TEXT,
    rejection_reason   TEXT
);
-- One live topic per name; a deleted topic frees its name.
CREATE UNIQUE INDEX topics_live_name ON topics (name) WHERE status <> 'deleted';
CREATE INDEX topics_status ON topics (status, topic_id);

CREATE TABLE subscriptions (
    subscription_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT    NOT NULL,
    topic_id        INTEGER NOT NULL REFERENCES topics (topic_id),
    subscribed_at   TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'active',
    UNIQUE (user_id, topic_id)
);
CREATE INDEX subscriptions_topic ON subscriptions (topic_id);

CREATE TABLE users (
    user_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'producer', 'user')),
    created_at    TEXT NOT NULL
);

-- Only the SHA-256 of a token is stored.
CREATE TABLE tokens (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at TEXT    NOT NULL,
    expires_at TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX tokens_expiry ON tokens (expires_at);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE audit (
    audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT    NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    topic_id INTEGER REFERENCES topics (topic_id),
    target   TEXT    NOT NULL,
    before   TEXT,
    after    TEXT
);
CREATE INDEX audit_actor ON audit (actor, audit_id);
CREATE INDEX audit_topic ON audit (topic_id, audit_id);
CREATE INDEX audit_action ON audit (action, audit_id);

-- Counts kept in the same transactions as the rows they count, so statistics
-- never scan a table.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES
    ('topics.pending', 0), ('topics.approved', 0), ('topics.active', 0),
    ('topics.inactive', 0), ('topics.rejected', 0), ('topics.deleted', 0),
    ('subscriptions', 0), ('users', 0);
