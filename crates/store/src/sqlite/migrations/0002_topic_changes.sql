-- Every change to a topic row counts here, in the transaction that makes it, so a copy of
-- the topic list is known current by reading one row (the list's ETag).
INSERT INTO counters (name, value) VALUES ('topics.changes', 0);
CREATE TRIGGER topics_changed_on_insert AFTER INSERT ON topics BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'topics.changes';
END;
CREATE TRIGGER topics_changed_on_update AFTER UPDATE ON topics BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'topics.changes';
END;
CREATE TRIGGER topics_changed_on_delete AFTER DELETE ON topics BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'topics.changes';
END;
