-- Websentry archive, schema version 3: the identity of the topic beside what was read of it.
--
-- A topic deleted and created again under the same name starts its offsets at 0 again. The Kafka
-- topic id (a UUID given at creation) tells the two apart: the consumer stores it with the offsets
-- and reads a topic whose id changed from its beginning, instead of skipping every record below
-- the old offsets. NULL: stored before version 3, taken to belong to the topic as it is.
ALTER TABLE consumer_offsets ADD COLUMN topic_id uuid;

-- Rejected records of two lives of one topic name can share an offset: keep both. The nil UUID
-- stands for "before version 3" and for a broker that gives no id.
ALTER TABLE rejected_messages
    ADD COLUMN kafka_topic_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE rejected_messages DROP CONSTRAINT rejected_messages_pkey;
ALTER TABLE rejected_messages ADD PRIMARY KEY (kafka_topic, kafka_topic_id, kafka_partition, kafka_offset);
