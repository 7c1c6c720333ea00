-- Usernames that differ only in case are one name: `ADMIN` must not pass for `admin`.
-- (Names are ASCII, so lower() folds them the same on both engines.)
CREATE UNIQUE INDEX users_username_folded ON users (lower(username));

-- Subscriptions belong to existing users: those left by deleted accounts would be
-- inherited by a new account of the same name.
DELETE FROM subscriptions WHERE user_id NOT IN (SELECT username FROM users);
UPDATE counters SET value = (SELECT COUNT(*) FROM subscriptions) WHERE name = 'subscriptions';
CREATE INDEX subscriptions_user ON subscriptions (user_id, subscription_id);

-- Counting a requester's pending topics (their quota) reads only pending rows.
CREATE INDEX topics_pending_by_requester ON topics (created_by) WHERE status = 'pending';
