-- Kafka refuses a topic whose name differs from an existing one only in '.' and '_' (the
-- two would share metric names): one live topic per name with every '.' as '_', enforced
-- by the database. The expression is the one the store's queries use, so they use this
-- index. A database that already holds two such live topics fails here, naming this index:
-- delete one of them with the previous version first.
CREATE UNIQUE INDEX topics_live_kafka_name ON topics ((replace(name, '.', '_')))
    WHERE status <> 'deleted';

-- Why the producer cannot create an approved topic in Kafka, as it last reported.
ALTER TABLE topics ADD COLUMN provisioning_error TEXT;

-- What else a change said: a rejection's reason, a provisioning failure.
ALTER TABLE audit ADD COLUMN detail TEXT;
