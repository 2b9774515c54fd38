-- Websentry archive, schema version 4: the archive at a year's scale.
--
-- * `reports` is partitioned by UTC day of `checked_at` (`reports_pYYYYMMDD`), with a default
--   partition that takes a report for a day without a partition (late, or far in the future) so that
--   none is lost; the consumer creates days ahead and moves such rows into their day
--   (`websentry_create_partitions`), and retention drops whole days (`websentry_drop_day`).
-- * A row stores the typed columns once; `extra` keeps only what they do not rebuild (unknown
--   fields, a shortened url's whole value, a time written with another offset…), usually NULL.
--   `report_documents` rebuilds each document.
-- * `rollup_hourly` and `rollup_daily`: per (url, probe) and hour / UTC day, written in the same
--   transaction as the raw rows and counting only reports that were new. Latency histogram: 128
--   log-spaced buckets (`b0`…`b127`, NULL = 0) of successful probes' `response_ms`: bucket 0 is
--   below 1 ms, bucket k ≥ 1 is [1.1^(k-1), 1.1^k) ms, bucket 127 is open above 1.1^126 ms (~165 s).
-- * `site_summary(window_start, window_end)`, `latest_reports`, `certificates_expiring`: the answers,
--   as a stable interface (README).
--
-- The version-3 rows are converted in place, every row kept, and the rollups are computed from them.

-- The version-3 table steps aside; the `log` view is recreated over the new one below.
DROP VIEW log;
ALTER TABLE reports RENAME TO reports_v3;
ALTER TABLE reports_v3 RENAME CONSTRAINT reports_pkey TO reports_v3_pkey;
ALTER INDEX reports_url_checked_at RENAME TO reports_v3_url_checked_at;
ALTER INDEX reports_tls_expires_at RENAME TO reports_v3_tls_expires_at;

-- Widest-aligned columns first: no padding between them.
CREATE TABLE reports (
    checked_at         timestamptz      NOT NULL,
    id                 uuid             NOT NULL,
    response_ms        double precision NOT NULL,
    timing_dns_ms      double precision,
    timing_connect_ms  double precision,
    timing_tls_ms      double precision,
    timing_ttfb_ms     double precision,
    timing_transfer_ms double precision,
    tls_expires_at     timestamptz,
    body_bytes         bigint,
    kafka_offset       bigint           NOT NULL,
    archived_at        timestamptz      NOT NULL DEFAULT now(),
    code               integer          NOT NULL,
    redirects          integer          NOT NULL DEFAULT 0,
    kafka_partition    integer          NOT NULL,
    report_version     smallint         NOT NULL,
    -- The nanoseconds below the microsecond that `timestamptz` keeps (1..999), NULL for none.
    checked_at_ns      smallint,
    url                text             NOT NULL,
    probe              text             NOT NULL,
    error_kind         text,
    error_message      text,
    http_version       text,
    regexp_match       text,
    -- NULL when the final response came from `url` itself (or when there was none: see
    -- report_document).
    final_url          text,
    kafka_topic        text             NOT NULL,
    -- The document's fields that the columns do not rebuild exactly; NULL when there are none.
    extra              jsonb,
    -- A producer retry repeats the id and checked_at: archived once. (A unique key must hold the
    -- partition key.)
    PRIMARY KEY (id, checked_at)
) PARTITION BY RANGE (checked_at);

CREATE TABLE reports_default PARTITION OF reports DEFAULT;

-- "Reports of one site over time" and the latest report of a site.
CREATE INDEX reports_url_checked_at ON reports (url, checked_at DESC);

-- The Python tool's table, as a view over the archive: same columns as before.
CREATE VIEW log AS
    SELECT id, checked_at AS stamp, url, code, response_ms, regexp_match
    FROM reports;

-- RFC 3339 in UTC as the producer writes it (Rust `time`): the fraction of a second without its
-- trailing zeros, none when zero.
CREATE FUNCTION websentry_rfc3339(t timestamptz, ns smallint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN t IS NULL THEN NULL ELSE
        to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || coalesce('.' || nullif(rtrim(lpad(
               (extract(microseconds FROM t)::bigint % 1000000 * 1000 + coalesce(ns, 0))::text, 9, '0'), '0'), ''), '')
        || 'Z'
    END;

-- The document of a row: rebuilt from the columns, then `extra` over it.
CREATE FUNCTION report_document(r reports) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN r.report_version = 0 THEN
        -- A record of the Python tool: its four fields (id and time come from the Kafka record).
        jsonb_build_object('url', r.url, 'code', r.code, 'response_ms', r.response_ms, 'regexp_match', r.regexp_match)
    ELSE jsonb_build_object(
        'v', r.report_version, 'id', r.id, 'url', r.url, 'code', r.code, 'response_ms', r.response_ms,
        'regexp_match', r.regexp_match, 'checked_at', websentry_rfc3339(r.checked_at, r.checked_at_ns),
        'probe', r.probe,
        'error', CASE WHEN r.error_kind IS NOT NULL THEN jsonb_build_object('kind', r.error_kind, 'message', r.error_message) END,
        'timings_ms', jsonb_build_object('dns', r.timing_dns_ms, 'connect', r.timing_connect_ms, 'tls', r.timing_tls_ms,
                                         'ttfb', r.timing_ttfb_ms, 'transfer', r.timing_transfer_ms),
        'http_version', r.http_version,
        'final_url', coalesce(r.final_url, CASE WHEN r.http_version IS NOT NULL THEN r.url END),
        'redirects', r.redirects, 'body_bytes', r.body_bytes,
        'tls_expires_at', websentry_rfc3339(r.tls_expires_at, NULL))
    END || coalesce(r.extra, '{}');

CREATE VIEW report_documents AS
    SELECT r.id, r.checked_at, report_document(r) AS report FROM reports r;

-- ------------------------------------------------------------------------------------------------
-- Day partitions. These functions run as the schema owner (SECURITY DEFINER), so that a consumer
-- that owns nothing can keep the partitions (deploy/postgres/grants.sql grants it EXECUTE).

-- The day partitions, oldest first.
CREATE FUNCTION websentry_report_days() RETURNS SETOF date
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT to_date(substr(c.relname, 10), 'YYYYMMDD') AS day
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'public.reports'::regclass AND c.relname ~ '^reports_p[0-9]{8}$'
    ORDER BY day
$$;

-- Creates the partition of each day from `first` to `last` that has none, and of each day from
-- `keep_from` (NULL: any) to `last` that has rows in the default partition (moved into it); rows
-- further ahead (a wrong clock) wait in the default partition for their day. Returns the days
-- created.
-- CREATE TABLE + ATTACH rather than CREATE … PARTITION OF, which would lock `reports` against every
-- reader and writer: this locks the default partition (EXCLUSIVE first, so that no row of the day
-- slips in between the move and the ATTACH, then ACCESS EXCLUSIVE while ATTACH checks it) and the
-- new table; the other partitions stay readable and writable.
CREATE FUNCTION websentry_create_partitions(first date, last date, keep_from date) RETURNS SETOF date
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d date;
    part text;
    lo timestamptz;
    hi timestamptz;
BEGIN
    -- Once per call and with the migrations: replicas starting together create each day once.
    PERFORM pg_advisory_xact_lock(8603390910923699314);  -- the migration lock ("websentr")
    FOR d IN
        SELECT g::date FROM generate_series(first, last, interval '1 day') g
        UNION
        SELECT DISTINCT (checked_at AT TIME ZONE 'UTC')::date FROM reports_default
        WHERE checked_at >= coalesce(keep_from, '-infinity')::timestamp AT TIME ZONE 'UTC'
          AND checked_at < (last + 1)::timestamp AT TIME ZONE 'UTC'
        ORDER BY 1
    LOOP
        part := format('reports_p%s', to_char(d, 'YYYYMMDD'));
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        lo := d::timestamp AT TIME ZONE 'UTC';
        hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I (LIKE reports INCLUDING DEFAULTS INCLUDING STORAGE)', part);
        -- Proves the bounds to ATTACH, which then does not scan the new table.
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT day CHECK (checked_at >= %L AND checked_at < %L)', part, lo, hi);
        LOCK TABLE reports_default IN EXCLUSIVE MODE;
        EXECUTE format('WITH moved AS (DELETE FROM reports_default WHERE checked_at >= %L AND checked_at < %L RETURNING *)
                        INSERT INTO %I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE reports ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT day', part);
        RETURN NEXT d;
    END LOOP;
END $$;

-- Retention: drops the partition of day `d` (never a DELETE of a day), and rows of that day or
-- older left in the default partition. True when there was one.
CREATE FUNCTION websentry_drop_day(d date) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part text := format('reports_p%s', to_char(d, 'YYYYMMDD'));
BEGIN
    DELETE FROM reports_default WHERE checked_at < (d + 1)::timestamp AT TIME ZONE 'UTC';
    IF to_regclass(part) IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE %I', part);
    RETURN true;
END $$;

-- Reports waiting in the default partition: far in the future (a wrong clock), or for a day whose
-- partition could not be created. Each partition created scans them, so the consumer reports it.
CREATE FUNCTION websentry_default_rows() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) FROM reports_default
$$;

-- ------------------------------------------------------------------------------------------------
-- Rollups. Per (url, probe) and hour / UTC day: probes, successes (`error` null), failures by error
-- kind, response time sum/min/max and histogram of the successes, the earliest certificate expiry
-- and the last report's time. Counts that are zero in a bucket are NULL (one bit instead of four
-- bytes). BRIN on the time: all-sites windows read only the blocks of their days.

DO $$
DECLARE
    buckets text := (SELECT string_agg(format('b%s integer', k), ', ' ORDER BY k) FROM generate_series(0, 127) k);
    common text := 'last_checked_at      timestamptz      NOT NULL,
                    tls_expires_at       timestamptz,
                    response_ms_sum      double precision,
                    response_ms_min      double precision,
                    response_ms_max      double precision,
                    probes               integer          NOT NULL,
                    successes            integer          NOT NULL,
                    failures_invalid_url integer          NOT NULL DEFAULT 0,
                    failures_dns         integer          NOT NULL DEFAULT 0,
                    failures_connect     integer          NOT NULL DEFAULT 0,
                    failures_tls         integer          NOT NULL DEFAULT 0,
                    failures_timeout     integer          NOT NULL DEFAULT 0,
                    failures_http        integer          NOT NULL DEFAULT 0,
                    failures_body_limit  integer          NOT NULL DEFAULT 0,
                    failures_regex_limit integer          NOT NULL DEFAULT 0, ';
BEGIN
    EXECUTE format('CREATE TABLE rollup_hourly (hour timestamptz NOT NULL, %s %s,
                        url text NOT NULL, probe text NOT NULL, PRIMARY KEY (url, probe, hour))', common, buckets);
    EXECUTE format('CREATE TABLE rollup_daily (day date NOT NULL, %s %s,
                        url text NOT NULL, probe text NOT NULL, PRIMARY KEY (url, probe, day))', common, buckets);
END $$;
CREATE INDEX rollup_hourly_hour ON rollup_hourly USING brin (hour);
CREATE INDEX rollup_daily_day ON rollup_daily USING brin (day);

-- Rollup retention: rows of hours and days before `before` (UTC).
CREATE FUNCTION websentry_expire_rollups(before date) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    hourly bigint;
    daily bigint;
BEGIN
    DELETE FROM rollup_hourly WHERE hour < before::timestamp AT TIME ZONE 'UTC';
    GET DIAGNOSTICS hourly = ROW_COUNT;
    DELETE FROM rollup_daily WHERE day < before;
    GET DIAGNOSTICS daily = ROW_COUNT;
    RETURN hourly + daily;
END $$;

-- Upkeep is for the consumer (and the owner), not for everyone: functions are executable by PUBLIC
-- unless revoked.
REVOKE EXECUTE ON FUNCTION websentry_report_days(), websentry_create_partitions(date, date, date),
    websentry_drop_day(date), websentry_expire_rollups(date), websentry_default_rows() FROM PUBLIC;

-- The histogram bucket of a response time, as the consumer computes it.
CREATE FUNCTION websentry_bucket(ms double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN NOT ms >= 1 THEN 0 ELSE least(127, 1 + floor(ln(ms) / ln(1.1)))::integer END;

-- The response time a bucket stands for: its geometric midpoint (0.5 ms for bucket 0).
CREATE FUNCTION websentry_bucket_ms(bucket integer) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN bucket = 0 THEN 0.5 ELSE power(1.1, bucket - 0.5) END;

-- p50, p95 and p99 of a histogram (counts of buckets 0…127): the bucket of the ⌈p·n⌉-th smallest
-- value, the rank percentile_disc uses. NULLs when the histogram is empty. (For one histogram at a
-- time; site_summary computes the same in its query, see there.)
CREATE FUNCTION websentry_percentiles(counts bigint[]) RETURNS double precision[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    total bigint := 0;
    seen bigint := 0;
    ranks bigint[];
    found double precision[] := '{}';
    k integer := 1;
    c bigint;
BEGIN
    SELECT coalesce(sum(x), 0) INTO total FROM unnest(counts) x;
    IF total = 0 THEN
        RETURN ARRAY[NULL, NULL, NULL]::double precision[];
    END IF;
    ranks := ARRAY[greatest(1, ceil(0.50 * total)), greatest(1, ceil(0.95 * total)), greatest(1, ceil(0.99 * total))];
    FOR i IN 1 .. 128 LOOP
        c := counts[i];
        CONTINUE WHEN c IS NULL OR c = 0;
        seen := seen + c;
        WHILE k <= 3 AND seen >= ranks[k] LOOP
            found := found || websentry_bucket_ms(i - 1);
            k := k + 1;
        END LOOP;
        EXIT WHEN k > 3;
    END LOOP;
    RETURN found;
END $$;

-- The answer for each (url, probe) over [window_start, window_end), in whole hours (the start
-- rounded down, the end up): whole UTC days from the daily rollups, the hours at either edge from
-- the hourly ones. Its cost grows with sites × (days + edge hours), not with raw rows. The bounds
-- are passed to EXECUTE so that each call is planned for its own days.
--
-- The percentiles are computed in the query, not by calling `websentry_percentiles` per row (a
-- plpgsql loop over 128 buckets; benches/archive.rs, 1,000 sites over 19,000 rollup rows: 0.48 s
-- with it, 0.21 s without): the bucket sums
-- z0…z127 become a cumulative array c, and the bucket of rank r is the number of cumulative counts
-- below r, `width_bucket(r - 1, c)` (a binary search). The cumulative sums are built in three
-- fenced steps (OFFSET 0 keeps the planner from merging them back into one quadratic expression):
-- sums of 16 groups of 8 buckets, the sum of the groups before each group, then each bucket's
-- total from its group's start. Same ranks and results as `websentry_percentiles`.
DO $$
DECLARE
    cols text := (SELECT string_agg(format('b%s', k), ', ' ORDER BY k) FROM generate_series(0, 127) k);
    sums text := (SELECT string_agg(format('coalesce(sum(b%s), 0)::bigint AS z%s', k, k), ', ' ORDER BY k)
                  FROM generate_series(0, 127) k);
    groups text := (SELECT string_agg(format('%s AS g%s', (SELECT string_agg(format('z%s', k), ' + ' ORDER BY k)
                                                           FROM generate_series(8 * j, 8 * j + 7) k), j), ', ' ORDER BY j)
                    FROM generate_series(0, 15) j);
    befores text := (SELECT string_agg(CASE WHEN j = 0 THEN '0::bigint AS e0' ELSE format('%s AS e%s',
                         (SELECT string_agg(format('g%s', i), ' + ' ORDER BY i) FROM generate_series(0, j - 1) i), j) END,
                         ', ' ORDER BY j)
                     FROM generate_series(0, 15) j);
    cumulative text := (SELECT string_agg(format('e%s + %s', k / 8, (SELECT string_agg(format('z%s', i), ' + ' ORDER BY i)
                                                                    FROM generate_series(k / 8 * 8, k) i)), ', ' ORDER BY k)
                        FROM generate_series(0, 127) k);
    plain_sums text := (SELECT string_agg(format('sum(b%s)', k), ', ' ORDER BY k) FROM generate_series(0, 127) k);
    body text;
BEGIN
    body := format($body$
#variable_conflict use_column
DECLARE
    lo timestamptz := date_trunc('hour', window_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi timestamptz := date_trunc('hour', (window_end AT TIME ZONE 'UTC') + interval '1 hour' - interval '1 microsecond') AT TIME ZONE 'UTC';
    -- Whole days inside [lo, hi): [day_lo, day_hi).
    day_lo timestamptz := date_trunc('day', (lo AT TIME ZONE 'UTC') + interval '1 day' - interval '1 microsecond') AT TIME ZONE 'UTC';
    day_hi timestamptz := date_trunc('day', hi AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
    IF window_start IS NULL OR window_end IS NULL OR hi <= lo THEN
        RETURN;
    END IF;
    IF day_lo >= day_hi THEN
        day_lo := hi;
        day_hi := hi;
    END IF;
    IF site IS NOT NULL THEN
        -- One site: a static query, whose plan the session keeps (planning the all-sites query
        -- below costs more than reading one site's rows), read through the primary keys.
        RETURN QUERY
            SELECT s.url, s.probe, s.probes, s.successes, s.successes::double precision / s.probes,
                   s.q[1], s.q[2], s.q[3], s.last_checked_at
            FROM (SELECT p.url, p.probe, sum(p.probes)::bigint AS probes, sum(p.successes)::bigint AS successes,
                         max(p.last_checked_at) AS last_checked_at, websentry_percentiles(ARRAY[%6$s]::bigint[]) AS q
                  FROM (SELECT url, probe, probes, successes, last_checked_at, %1$s FROM rollup_daily
                        WHERE url = site AND day >= (day_lo AT TIME ZONE 'UTC')::date AND day < (day_hi AT TIME ZONE 'UTC')::date
                        UNION ALL
                        SELECT url, probe, probes, successes, last_checked_at, %1$s FROM rollup_hourly
                        WHERE url = site AND ((hour >= lo AND hour < day_lo) OR (hour >= day_hi AND hour < hi))) p
                  GROUP BY p.url, p.probe) s
            ORDER BY s.url, s.probe;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'WITH parts AS (
             SELECT url, probe, probes, successes, last_checked_at, %1$s FROM rollup_daily
             WHERE day >= ($3 AT TIME ZONE ''UTC'')::date AND day < ($4 AT TIME ZONE ''UTC'')::date AND ($5 IS NULL OR url = $5)
             UNION ALL
             SELECT url, probe, probes, successes, last_checked_at, %1$s FROM rollup_hourly
             WHERE ((hour >= $1 AND hour < $3) OR (hour >= $4 AND hour < $2)) AND ($5 IS NULL OR url = $5)
         ), sums AS (
             SELECT url, probe, sum(probes)::bigint AS probes, sum(successes)::bigint AS successes,
                    max(last_checked_at) AS last_checked_at, %2$s
             FROM parts GROUP BY url, probe
         ), groups AS (
             SELECT *, %3$s FROM sums OFFSET 0
         ), befores AS (
             SELECT *, %4$s FROM groups OFFSET 0
         ), cumulative AS (
             SELECT url, probe, probes, successes, last_checked_at, ARRAY[%5$s] AS c FROM befores OFFSET 0
         )
         SELECT url, probe, probes, successes, successes::double precision / probes,
                CASE WHEN c[128] > 0 THEN websentry_bucket_ms(width_bucket(greatest(1, ceil(0.50 * c[128]))::bigint - 1, c)) END,
                CASE WHEN c[128] > 0 THEN websentry_bucket_ms(width_bucket(greatest(1, ceil(0.95 * c[128]))::bigint - 1, c)) END,
                CASE WHEN c[128] > 0 THEN websentry_bucket_ms(width_bucket(greatest(1, ceil(0.99 * c[128]))::bigint - 1, c)) END,
                last_checked_at
         FROM cumulative
         ORDER BY url, probe'
        USING lo, hi, day_lo, day_hi, site;
END
$body$, cols, sums, groups, befores, cumulative, plain_sums);
    EXECUTE format($f$
        CREATE FUNCTION site_summary(window_start timestamptz, window_end timestamptz, site text DEFAULT NULL)
        RETURNS TABLE (url text, probe text, probes bigint, successes bigint, uptime double precision,
                       p50_ms double precision, p95_ms double precision, p99_ms double precision,
                       last_checked_at timestamptz)
        LANGUAGE plpgsql STABLE SET work_mem = '64MB' AS %L$f$, body);
END $$;

-- The latest report of each (url, probe) seen in the last 7 days, one index lookup each.
CREATE VIEW latest_reports AS
    SELECT r.*
    FROM (SELECT url, probe, max(last_checked_at) AS last_checked_at
          FROM rollup_daily WHERE day >= (now() AT TIME ZONE 'UTC')::date - 7
          GROUP BY url, probe) s
    CROSS JOIN LATERAL (
        SELECT * FROM reports r
        WHERE r.url = s.url AND r.checked_at = s.last_checked_at AND r.probe = s.probe
        LIMIT 1) r;

-- The certificate each site showed last, soonest expiry first: `WHERE days_left < 30`.
CREATE VIEW certificates_expiring AS
    SELECT url, probe, tls_expires_at,
           extract(epoch FROM tls_expires_at - now()) / 86400 AS days_left,
           checked_at AS last_checked_at
    FROM latest_reports
    WHERE tls_expires_at IS NOT NULL
    ORDER BY tls_expires_at;

-- ------------------------------------------------------------------------------------------------
-- The version-3 rows: one partition per day present, every row converted, rollups computed.

-- Days far from today (a wrong clock) stay in the default partition rather than making thousands
-- of partitions; the consumer's upkeep moves a day out of it when its partition is created.
SELECT websentry_create_partitions(d, d, NULL)
FROM (SELECT DISTINCT (checked_at AT TIME ZONE 'UTC')::date AS d FROM reports_v3) days
WHERE d BETWEEN (now() AT TIME ZONE 'UTC')::date - 800 AND (now() AT TIME ZONE 'UTC')::date + 7;

INSERT INTO reports (checked_at, id, response_ms, timing_dns_ms, timing_connect_ms, timing_tls_ms, timing_ttfb_ms,
                     timing_transfer_ms, tls_expires_at, body_bytes, kafka_offset, archived_at, code, redirects,
                     kafka_partition, report_version, checked_at_ns, url, probe, error_kind, error_message,
                     http_version, regexp_match, final_url, kafka_topic)
SELECT checked_at, id, response_ms, timing_dns_ms, timing_connect_ms, timing_tls_ms, timing_ttfb_ms,
       timing_transfer_ms, tls_expires_at, body_bytes, kafka_offset, archived_at, code, redirects,
       kafka_partition, report_version,
       nullif(rpad(coalesce(substring(report->>'checked_at' FROM '\.\d{6}(\d{1,3})'), ''), 3, '0')::smallint, 0),
       url, probe, error_kind, error_message, http_version, regexp_match,
       CASE WHEN final_url IS DISTINCT FROM url OR http_version IS NULL THEN final_url END,
       kafka_topic
FROM reports_v3;

-- What the columns do not rebuild of each old document goes to `extra`.
UPDATE reports r SET extra = d.extra
FROM (SELECT o.id, o.checked_at,
             (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(o.report) e
              WHERE rebuilt.doc -> e.key IS DISTINCT FROM e.value) AS extra
      FROM reports_v3 o JOIN reports n ON n.id = o.id AND n.checked_at = o.checked_at,
           LATERAL (SELECT report_document(n) AS doc) rebuilt) d
WHERE r.id = d.id AND r.checked_at = d.checked_at AND d.extra IS NOT NULL;

DO $$
DECLARE
    buckets text := (SELECT string_agg(format('nullif(count(*) FILTER (WHERE error_kind IS NULL AND bucket = %s), 0)', k), ', ' ORDER BY k)
                     FROM generate_series(0, 127) k);
    sums text := (SELECT string_agg(format('sum(b%s)', k), ', ' ORDER BY k) FROM generate_series(0, 127) k);
    cols text := (SELECT string_agg(format('b%s', k), ', ' ORDER BY k) FROM generate_series(0, 127) k);
    counters text := 'last_checked_at, tls_expires_at, response_ms_sum, response_ms_min, response_ms_max, probes, successes,
                      failures_invalid_url, failures_dns, failures_connect, failures_tls, failures_timeout, failures_http,
                      failures_body_limit, failures_regex_limit';
BEGIN
    EXECUTE format('INSERT INTO rollup_hourly (hour, url, probe, %s, %s)
        SELECT date_trunc(''hour'', checked_at AT TIME ZONE ''UTC'') AT TIME ZONE ''UTC'', url, probe,
               max(checked_at), min(tls_expires_at),
               sum(response_ms) FILTER (WHERE error_kind IS NULL), min(response_ms) FILTER (WHERE error_kind IS NULL),
               max(response_ms) FILTER (WHERE error_kind IS NULL), count(*), count(*) FILTER (WHERE error_kind IS NULL),
               count(*) FILTER (WHERE error_kind = ''invalid_url''), count(*) FILTER (WHERE error_kind = ''dns''),
               count(*) FILTER (WHERE error_kind = ''connect''), count(*) FILTER (WHERE error_kind = ''tls''),
               count(*) FILTER (WHERE error_kind = ''timeout''), count(*) FILTER (WHERE error_kind = ''http''),
               count(*) FILTER (WHERE error_kind = ''body_limit''), count(*) FILTER (WHERE error_kind = ''regex_limit''),
               %s
        FROM (SELECT *, websentry_bucket(response_ms) AS bucket FROM reports) r GROUP BY 1, 2, 3', counters, cols, buckets);
    EXECUTE format('INSERT INTO rollup_daily (day, url, probe, %s, %s)
        SELECT (hour AT TIME ZONE ''UTC'')::date, url, probe, max(last_checked_at), min(tls_expires_at),
               sum(response_ms_sum), min(response_ms_min), max(response_ms_max), sum(probes), sum(successes),
               sum(failures_invalid_url), sum(failures_dns), sum(failures_connect), sum(failures_tls),
               sum(failures_timeout), sum(failures_http), sum(failures_body_limit), sum(failures_regex_limit),
               %s
        FROM rollup_hourly GROUP BY 1, 2, 3', counters, cols, sums);
END $$;

-- Every row made it, or nothing of this migration is kept.
DO $$
BEGIN
    IF (SELECT count(*) FROM reports_v3) <> (SELECT count(*) FROM reports) THEN
        RAISE EXCEPTION 'migration 4: % rows in version 3, % converted',
            (SELECT count(*) FROM reports_v3), (SELECT count(*) FROM reports);
    END IF;
END $$;

DROP TABLE reports_v3;
