-- Websentry archive, schema version 1.

-- One row per probe report. `id` is the producer's UUIDv7: a report that a producer retry wrote
-- twice to Kafka is archived once. `report` keeps the document as received, unknown fields included.
CREATE TABLE reports (
    id              uuid             PRIMARY KEY,
    url             text             NOT NULL,
    code            integer          NOT NULL,
    response_ms     double precision NOT NULL,
    regexp_match    text,
    checked_at      timestamptz      NOT NULL,
    probe           text             NOT NULL,
    error_kind      text,
    error_message   text,
    http_version    text,
    body_bytes      bigint,
    report          jsonb            NOT NULL,
    kafka_topic     text             NOT NULL,
    kafka_partition integer          NOT NULL,
    kafka_offset    bigint           NOT NULL,
    archived_at     timestamptz      NOT NULL DEFAULT now()
);

-- "Reports of one site over time" and "latest report per site".
CREATE INDEX reports_url_checked_at ON reports (url, checked_at DESC);

-- The next Kafka offset to read, per consumer group, topic and partition. Advanced in the same
-- transaction that inserts the rows it covers.
CREATE TABLE consumer_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Records that could not be read as reports, kept with the reason instead of being dropped.
CREATE TABLE rejected_messages (
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    key             bytea,
    payload         bytea,
    reason          text        NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset)
);

-- The Python tool's table, as a view over the archive.
CREATE VIEW log AS
    SELECT id, checked_at AS stamp, url, code, response_ms, regexp_match
    FROM reports;
