-- The schema of the SQLite engine, in PostgreSQL types.

CREATE TABLE topics (
    topic_id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               TEXT             NOT NULL,
    status             TEXT             NOT NULL CHECK (status IN
                         ('pending', 'approved', 'active', 'inactive', 'rejected', 'deleted')),
    partitions         INTEGER          NOT NULL CHECK (partitions BETWEEN 1 AND 1000),
    replication_factor INTEGER          NOT NULL CHECK (replication_factor >= 1),
    description        TEXT             NOT NULL DEFAULT '',
    data_type          TEXT             NOT NULL,
    rate_per_second    DOUBLE PRECISION CHECK (rate_per_second IS NULL OR rate_per_second > 0),
    created_by         TEXT             NOT NULL,
    created_at         TIMESTAMPTZ      NOT NULL,
    updated_at         TIMESTAMPTZ      NOT NULL,
    approved_at        TIMESTAMPTZ,
    activated_at       TIMESTAMPTZ,
    deactivated_at     TIMESTAMPTZ,
    rejection_reason   TEXT
);
-- One live topic per name; a deleted topic frees its name.
CREATE UNIQUE INDEX topics_live_name ON topics (name) WHERE status <> 'deleted';
CREATE INDEX topics_status ON topics (status, topic_id);
CREATE INDEX topics_name ON topics (name);

CREATE TABLE subscriptions (
    subscription_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         TEXT        NOT NULL,
    topic_id        BIGINT      NOT NULL REFERENCES topics (topic_id),
    subscribed_at   TIMESTAMPTZ NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'active',
    UNIQUE (user_id, topic_id)
);
CREATE INDEX subscriptions_topic ON subscriptions (topic_id);

CREATE TABLE users (
    user_id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT        NOT NULL UNIQUE,
    password_hash TEXT        NOT NULL,
    role          TEXT        NOT NULL CHECK (role IN ('admin', 'producer', 'user')),
    created_at    TIMESTAMPTZ NOT NULL
);

-- Only the SHA-256 of a token is stored.
CREATE TABLE tokens (
    token_hash TEXT        PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX tokens_expiry ON tokens (expires_at);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE audit (
    audit_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL,
    actor    TEXT        NOT NULL,
    action   TEXT        NOT NULL,
    topic_id BIGINT      REFERENCES topics (topic_id),
    target   TEXT        NOT NULL,
    before   TEXT,
    after    TEXT
);
CREATE INDEX audit_actor ON audit (actor, audit_id);
CREATE INDEX audit_topic ON audit (topic_id, audit_id);
CREATE INDEX audit_action ON audit (action, audit_id);

-- Counts kept in the same transactions as the rows they count, so statistics
-- never scan a table.
CREATE TABLE counters (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES
    ('topics.pending', 0), ('topics.approved', 0), ('topics.active', 0),
    ('topics.inactive', 0), ('topics.rejected', 0), ('topics.deleted', 0),
    ('subscriptions', 0), ('users', 0);
