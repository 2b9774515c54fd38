-- Websentry archive, schema version 2: the report fields added after version 1, and records in the
-- Python tool's format.

-- Per-phase timings of the final request, one column each so that they can be indexed and averaged
-- without unpacking `report`; null for a phase that did not happen. `report_version` is the
-- document's `v`, 0 for a record written by the Python tool (its `id` is then derived from the Kafka
-- coordinates and `checked_at` is the record timestamp).
ALTER TABLE reports
    ADD COLUMN timing_dns_ms      double precision,
    ADD COLUMN timing_connect_ms  double precision,
    ADD COLUMN timing_tls_ms      double precision,
    ADD COLUMN timing_ttfb_ms     double precision,
    ADD COLUMN timing_transfer_ms double precision,
    ADD COLUMN final_url          text,
    ADD COLUMN redirects          integer  NOT NULL DEFAULT 0,
    ADD COLUMN tls_expires_at     timestamptz,
    ADD COLUMN report_version     integer  NOT NULL DEFAULT 1;

-- "Which certificates expire soon": only https reports have a value.
CREATE INDEX reports_tls_expires_at ON reports (tls_expires_at) WHERE tls_expires_at IS NOT NULL;

-- The Python tool's view keeps its columns; recreated so that it is defined by this version too.
CREATE OR REPLACE VIEW log AS
    SELECT id, checked_at AS stamp, url, code, response_ms, regexp_match
    FROM reports;
