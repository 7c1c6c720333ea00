-- Every change to a topic row counts here, in the transaction that makes it, so a copy of
-- the topic list is known current by reading one row (the list's ETag).
INSERT INTO counters (name, value) VALUES ('topics.changes', 0);
CREATE FUNCTION count_topic_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'topics.changes';
    RETURN NULL;
END
$$;
CREATE TRIGGER topics_changed AFTER INSERT OR UPDATE OR DELETE ON topics
    FOR EACH ROW EXECUTE FUNCTION count_topic_change();
