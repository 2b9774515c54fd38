-- The archive's SQL interface: what the status page, Grafana and people with psql read. Every
-- object here is documented with COMMENT ON (`\df+ site_summary`, `\dv+ latest_reports`).
--
-- How it is applied: after the migrations, whenever this file changes (its version and checksum
-- are recorded in `websentry_interface`; see consumer/src/schema/interface.rs), in the migrations'
-- transaction. Everything is CREATE OR REPLACE, so the grants given to these objects
-- (deploy/postgres/grants.sql) are kept. A change of shape (a column, a parameter, a return type)
-- cannot be made by CREATE OR REPLACE: a migration drops the old object first, and grants.sql is run
-- again afterwards, as after every migration.
--
-- The tables behind it (`reports`, `rollup_hourly`, `rollup_daily`, …) are not part of it: they are
-- the migrations' (consumer/src/sql/migrations/), and may change from one version to the next.
--
-- Helpers (`websentry_*`) are not executable by PUBLIC; grants.sql gives the readers what the
-- views need.

-- ------------------------------------------------------------------------------------------------
-- Documents: a stored row rebuilt as the JSON report it came from.

CREATE OR REPLACE FUNCTION websentry_rfc3339(t timestamptz, ns smallint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN t IS NULL THEN NULL ELSE
        to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || coalesce('.' || nullif(rtrim(lpad(
               (extract(microseconds FROM t)::bigint % 1000000 * 1000 + coalesce(ns, 0))::text, 9, '0'), '0'), ''), '')
        || 'Z'
    END;
COMMENT ON FUNCTION websentry_rfc3339(timestamptz, smallint) IS
    'Helper: a time (and its nanoseconds below the microsecond) in RFC 3339, UTC, as the producer writes it: the fraction without trailing zeros, none when zero.';

CREATE OR REPLACE FUNCTION report_document(r reports) RETURNS jsonb
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
        -- Written by the producer only when they say something: a cadence, an inconclusive failure.
        || CASE WHEN r.interval_s IS NOT NULL THEN jsonb_build_object('interval_s', r.interval_s) ELSE '{}' END
        || CASE WHEN r.inconclusive THEN jsonb_build_object('inconclusive', true) ELSE '{}' END
        || CASE WHEN r.site_name IS NOT NULL THEN jsonb_build_object('name', r.site_name) ELSE '{}' END
        || CASE WHEN r.site_group IS NOT NULL THEN jsonb_build_object('group', r.site_group) ELSE '{}' END
        || CASE WHEN r.tls_chain_expires_at IS NOT NULL
                THEN jsonb_build_object('tls_chain_expires_at', websentry_rfc3339(r.tls_chain_expires_at, NULL)) ELSE '{}' END
    END || coalesce(r.extra, '{}');
COMMENT ON FUNCTION report_document(reports) IS
    'The JSON report a row of reports was archived from: rebuilt from its columns, then its extra fields (unknown fields, values the columns do not keep exactly) over them. Equal, key for key, to the document received.';

CREATE OR REPLACE VIEW report_documents AS
    SELECT r.id, r.checked_at, report_document(r) AS report FROM reports r;
COMMENT ON VIEW report_documents IS
    'Every archived report as its JSON document (see report_document), with its id and time: filter on checked_at to read a few days only.';

CREATE OR REPLACE VIEW log AS
    SELECT id, checked_at AS stamp, url, code, response_ms, regexp_match
    FROM reports;
COMMENT ON VIEW log IS
    'The Python tool''s table, with its columns: one row per archived report (stamp is checked_at).';

-- ------------------------------------------------------------------------------------------------
-- Latency histograms. Rollups count successful probes' response_ms in 128 log-spaced buckets
-- (`b0`…`b127`, NULL = 0): bucket 0 is below 1 ms, bucket k ≥ 1 is [1.1^(k-1), 1.1^k) ms, bucket 127
-- is open above 1.1^126 ms (~165 s). A percentile is given as its bucket's geometric midpoint, within
-- √1.1 − 1 = 4.88 % of the exact value for values in [1 ms, 165 s) (0.5 ms absolute below 1 ms).

-- In double precision throughout, with ln(1.1) of the double nearest 1.1, as the consumer computes it
-- (rollup::bucket): `ln(1.1)` of the numeric 1.1 differs by a few ulps and moved values at a bucket's
-- edge into the next bucket. A value within an ulp of an edge may still fall either side where the
-- two math libraries differ; either bucket is within the stated error. NaN, which PostgreSQL orders
-- above every number, is bucket 0 as in the consumer.
CREATE OR REPLACE FUNCTION websentry_bucket(ms double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN ms = 'NaN' OR ms < 1 THEN 0 ELSE least(127, 1 + floor(ln(ms) / ln(1.1::double precision)))::integer END;
COMMENT ON FUNCTION websentry_bucket(double precision) IS
    'Helper: the histogram bucket (0 to 127) of a response time in ms, as the consumer computes it (rollup::bucket): 0 below 1 ms and for NaN, then one bucket per factor 1.1.';

-- In double precision, as the consumer (rollup::bucket_ms): `power(1.1, …)` of the numeric 1.1 took
-- 10 µs a call, 0.3 s of every 10,000 sites' three percentiles.
CREATE OR REPLACE FUNCTION websentry_bucket_ms(bucket integer) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN bucket = 0 THEN 0.5 ELSE power(1.1::double precision, bucket - 0.5::double precision) END;
COMMENT ON FUNCTION websentry_bucket_ms(integer) IS
    'Helper: the response time in ms a histogram bucket stands for, its geometric midpoint (0.5 ms for bucket 0).';

-- p50, p95 and p99 of one histogram: the bucket of the ⌈p·n⌉-th smallest value, the rank
-- percentile_disc uses.
CREATE OR REPLACE FUNCTION websentry_percentiles(counts bigint[]) RETURNS double precision[]
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
COMMENT ON FUNCTION websentry_percentiles(bigint[]) IS
    'Helper: p50, p95 and p99 in ms of one histogram (the counts of buckets 0 to 127), as the ⌈p·n⌉-th smallest value''s bucket midpoint; NULLs for an empty histogram.';

-- ------------------------------------------------------------------------------------------------
-- site_summary: uptime and latency per site over a window, from the rollups. Its cost grows with
-- sites × (days + edge hours), not with raw rows. The window is taken in whole hours (the start
-- rounded down, the end up): whole UTC days come from `rollup_daily`, the hours at either edge from
-- `rollup_hourly`. Two helpers answer: one site through a query whose plan the session keeps (planning
-- costs more than reading one site's rows), all sites through a query planned for each call's days;
-- site_summary picks one.

-- Where hourly rollups are kept: from the hourly horizon on (rollup_retention, moved by the
-- consumer's upkeep a UTC day at a time; -infinity while none was expired). Before it only daily
-- rows are left, which still hold every hour of their day.
CREATE OR REPLACE FUNCTION websentry_hourly_from() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT kept_from FROM rollup_retention WHERE level = 'hour'), '-infinity')
$$;
COMMENT ON FUNCTION websentry_hourly_from() IS
    'Helper: the time from which hourly rollups are all kept (a UTC midnight), -infinity while none was expired.';

-- The window in whole hours: [lo, hi), and the whole UTC days inside it, [day_lo, day_hi) (empty,
-- at hi, when there is none). An edge whose day is before the hourly horizon, where its hours are
-- gone, is taken in whole days: the start rounded down to its UTC midnight, the end up to the next
-- one, read from the daily rows. (Reading only the hours still kept would count the expired ones as
-- unmeasured time, which they were not.) No row when the window is empty or a bound is NULL. A
-- bound from year 10000 on stands for infinity: no report is dated there (the consumer refuses a
-- time past year 9999), and rounding a bound near PostgreSQL's last time up to its hour or day
-- would leave the range timestamptz holds ("timestamp out of range").
CREATE OR REPLACE FUNCTION websentry_summary_bounds(window_start timestamptz, window_end timestamptz)
    RETURNS TABLE (lo timestamptz, hi timestamptz, day_lo timestamptz, day_hi timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT e.lo, e.hi,
           CASE WHEN d.day_lo < d.day_hi THEN d.day_lo ELSE e.hi END,
           CASE WHEN d.day_lo < d.day_hi THEN d.day_hi ELSE e.hi END
    FROM (SELECT CASE WHEN window_start >= '10000-01-01 00:00:00+00' THEN 'infinity' ELSE window_start END AS s,
                 CASE WHEN window_end >= '10000-01-01 00:00:00+00' THEN 'infinity' ELSE window_end END AS e,
                 websentry_hourly_from() AS hourly_from) w,
         LATERAL (SELECT date_trunc('hour', w.s AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS lo,
                         date_trunc('hour', (w.e AT TIME ZONE 'UTC') + interval '1 hour' - interval '1 microsecond')
                             AT TIME ZONE 'UTC' AS hi) h,
         LATERAL (SELECT date_trunc('day', h.lo AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS lo_day,
                         date_trunc('day', h.hi AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hi_day) m,
         LATERAL (SELECT CASE WHEN m.lo_day < w.hourly_from THEN m.lo_day ELSE h.lo END AS lo,
                         CASE WHEN m.hi_day < w.hourly_from AND m.hi_day < h.hi
                              THEN (m.hi_day AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
                              ELSE h.hi END AS hi) e,
         LATERAL (SELECT date_trunc('day', (e.lo AT TIME ZONE 'UTC') + interval '1 day' - interval '1 microsecond')
                             AT TIME ZONE 'UTC' AS day_lo,
                         date_trunc('day', e.hi AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day_hi) d
    WHERE e.lo < e.hi
$$;
COMMENT ON FUNCTION websentry_summary_bounds(timestamptz, timestamptz) IS
    'Helper of site_summary: the window in whole UTC hours [lo, hi), in whole UTC days at an edge whose day is before the hourly horizon (websentry_hourly_from), and the whole UTC days inside it [day_lo, day_hi); no row for an empty window or a NULL bound; a bound from year 10000 on is infinity.';

-- Measured time. A report that states its cadence measures its slot, [checked_at, checked_at +
-- interval_s); the rollups hold, per bucket, the microseconds measured (covered_us, NULL while no
-- report that states a cadence reached the bucket) and, of those, measured down (down_us). A bucket
-- is never measured for longer than it has lasted: overlapping slots (two producers under one name,
-- a producer faster than it says) are capped at the bucket's length, and a bucket still running
-- counts only up to now. The down time is scaled into what is left after capping.
-- The part of a bucket that has passed, in microseconds: its whole length once it is over.
CREATE OR REPLACE FUNCTION websentry_span_us(bucket_start timestamptz, bucket_length interval) RETURNS double precision
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN bucket_start + bucket_length <= now() THEN extract(epoch FROM bucket_length)::double precision * 1e6
                ELSE greatest(0, extract(epoch FROM now() - bucket_start)::double precision * 1e6) END;
COMMENT ON FUNCTION websentry_span_us(timestamptz, interval) IS
    'Helper: the microseconds of a rollup bucket that have passed (its whole length once it is over).';

-- Of a bucket that measured `covered` microseconds and lasted `span`: the measured time, capped at
-- the span; NULL when nothing was measured (least() alone would ignore the NULL and give the span).
CREATE OR REPLACE FUNCTION websentry_measured_us(covered bigint, span double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN covered IS NOT NULL THEN least(covered, span) END;
COMMENT ON FUNCTION websentry_measured_us(bigint, double precision) IS
    'Helper: a rollup bucket''s measured microseconds capped at the bucket''s span; NULL when nothing was measured.';

-- Of a bucket that measured `covered` microseconds, `down` of them down, and lasted `span`: the down
-- time scaled into the measured time once capped at the span. NULL when nothing was measured.
-- Exact at the ends: a bucket not capped keeps its down time as stored, and one down all the time
-- it measured is down all of its measured time. (down × span ÷ covered rounds once the product
-- passes 2^53: a site down throughout showed a measured uptime of ±1e-16 instead of 0, and a
-- closed hour's down time moved by an ulp.)
CREATE OR REPLACE FUNCTION websentry_down_us(covered bigint, down bigint, span double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN covered > 0 THEN
        CASE WHEN covered <= span THEN down::double precision
             WHEN down = covered THEN span
             ELSE down * span / covered END
    END;
COMMENT ON FUNCTION websentry_down_us(bigint, bigint, double precision) IS
    'Helper: a rollup bucket''s down microseconds, scaled into its measured time capped at the bucket''s span.';

-- A window's measured time: coverage = measured ÷ the part of the window that has passed, unknown =
-- that part less measured, measured_uptime = 1 − down ÷ measured. NULLs when no report in the
-- window stated its cadence: then nothing is known of its time. Pooled over several locations, the
-- passed part counts once per location (location-seconds): measured and down are the locations'
-- sums, and coverage is their mean. A table of one row rather than OUT parameters: PostgreSQL
-- inlines a SQL function returning a table into the query that calls it in FROM, and runs one with
-- OUT parameters once per row (65 ms of every 10,000 sites' answer).
CREATE OR REPLACE FUNCTION websentry_window_measured(lo timestamptz, hi timestamptz,
                                                     measured_us double precision, down_us double precision,
                                                     locations integer)
    RETURNS TABLE (coverage double precision, measured_s double precision, unknown_s double precision,
                   down_s double precision, measured_uptime double precision)
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 1 AS $$
    SELECT CASE WHEN w.us > 0 THEN measured_us / w.us END,
           measured_us / 1e6,
           (w.us - measured_us) / 1e6,
           CASE WHEN measured_us IS NOT NULL THEN coalesce(down_us, 0) / 1e6 END,
           CASE WHEN measured_us > 0 THEN 1 - coalesce(down_us, 0) / measured_us END
    -- An open start (-infinity) has no length: coverage and unknown time are then NULL.
    FROM (SELECT CASE WHEN isfinite(lo) THEN greatest(0, extract(epoch FROM least(hi, now()) - lo) * 1e6)::double precision
                          * locations END AS us) w
$$;
COMMENT ON FUNCTION websentry_window_measured(timestamptz, timestamptz, double precision, double precision, integer) IS
    'Helper: coverage, measured, unknown and down seconds, and the uptime over the measured time, of a window [lo, hi) whose buckets measured measured_us and down_us, from locations places (the window''s passed part counts once per location).';

-- Kept window answers (migration 14): the upkeep sums ahead, per (url, probe), the buckets of the
-- fixed windows that are over, and site_summary adds the rows after them.
-- The first UTC day that ends after `t`: the daily rows of a window summed up to `t` are those
-- before it. (±infinity for ±infinity.)
CREATE OR REPLACE FUNCTION websentry_first_day_after(t timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (date_trunc('day', (t AT TIME ZONE 'UTC') - interval '1 day') + interval '1 day')::date;
COMMENT ON FUNCTION websentry_first_day_after(timestamptz) IS
    'Helper: the first UTC day that ends after a time (±infinity for ±infinity).';

-- The kept answer of a window, when there is one that counts: kept for the same bounds
-- (websentry_summary_bounds), and no batch noted since its snapshot wrote rollups of a bucket it
-- summed (an hour before `until` from its `lo` on; a day row's hours are within the day).
CREATE OR REPLACE FUNCTION websentry_kept_window(window_start timestamptz, window_end timestamptz)
    RETURNS TABLE (id bigint, until timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT k.id, k.cutoff
    FROM websentry_summary_bounds(window_start, window_end) b
    JOIN rollup_windows k ON k.lo = b.lo AND k.hi = b.hi AND k.day_lo = b.day_lo AND k.day_hi = b.day_hi
    WHERE NOT EXISTS (SELECT FROM rollup_writes w WHERE w.id > k.seen AND w.earliest < k.cutoff AND w.latest >= k.lo)
$$;
COMMENT ON FUNCTION websentry_kept_window(timestamptz, timestamptz) IS
    'Helper of site_summary: the kept answer (rollup_windows) of a window''s bounds, unless a rollup write noted after it reaches into what it summed.';

-- The rollup rows of a window's buckets, each bucket's measured and down time capped at its span:
-- daily rows of [d1_lo, d1_hi) and [d2_lo, d2_hi), hourly rows of [h1_lo, h1_hi) and
-- [h2_lo, h2_hi), and the sums kept for the windows `kept` (rollup_window_sums: a window kept ahead,
-- or calendar months; none when NULL). Buckets before `today` and
-- `this_hour` are over: their span is their whole length, without working it out per row from
-- now() (a timestamp and an interval added, for each of millions of rows). A SQL function, inlined
-- into the query that calls it in FROM: its caller's plan reads each table by its own bounds, and
-- a table whose ranges are all empty not at all (the bounds are constants in a plan made for the
-- call, so the test of the ranges is decided when planning; an empty range of days still scanned
-- the day index and every block it could not rule out).
CREATE OR REPLACE FUNCTION websentry_window_parts(d1_lo date, d1_hi date, d2_lo date, d2_hi date,
                                                  h1_lo timestamptz, h1_hi timestamptz,
                                                  h2_lo timestamptz, h2_hi timestamptz, today date,
                                                  this_hour timestamptz, kept bigint[])
    RETURNS TABLE (url text, probe text, probes integer, successes integer, last_checked_at timestamptz,
                   inconclusive integer, measured_us double precision, down_us double precision,
                   b0 integer, b1 integer, b2 integer, b3 integer, b4 integer, b5 integer, b6 integer, b7 integer, b8 integer, b9 integer, b10 integer, b11 integer, b12 integer, b13 integer, b14 integer, b15 integer, b16 integer, b17 integer, b18 integer, b19 integer, b20 integer, b21 integer, b22 integer, b23 integer, b24 integer, b25 integer, b26 integer, b27 integer, b28 integer, b29 integer, b30 integer, b31 integer, b32 integer, b33 integer, b34 integer, b35 integer, b36 integer, b37 integer, b38 integer, b39 integer, b40 integer, b41 integer, b42 integer, b43 integer, b44 integer, b45 integer, b46 integer, b47 integer, b48 integer, b49 integer, b50 integer, b51 integer, b52 integer, b53 integer, b54 integer, b55 integer, b56 integer, b57 integer, b58 integer, b59 integer, b60 integer, b61 integer, b62 integer, b63 integer, b64 integer, b65 integer, b66 integer, b67 integer, b68 integer, b69 integer, b70 integer, b71 integer, b72 integer, b73 integer, b74 integer, b75 integer, b76 integer, b77 integer, b78 integer, b79 integer, b80 integer, b81 integer, b82 integer, b83 integer, b84 integer, b85 integer, b86 integer, b87 integer, b88 integer, b89 integer, b90 integer, b91 integer, b92 integer, b93 integer, b94 integer, b95 integer, b96 integer, b97 integer, b98 integer, b99 integer, b100 integer, b101 integer, b102 integer, b103 integer, b104 integer, b105 integer, b106 integer, b107 integer, b108 integer, b109 integer, b110 integer, b111 integer, b112 integer, b113 integer, b114 integer, b115 integer, b116 integer, b117 integer, b118 integer, b119 integer, b120 integer, b121 integer, b122 integer, b123 integer, b124 integer, b125 integer, b126 integer, b127 integer)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT url, probe, probes, successes, last_checked_at, inconclusive,
           websentry_measured_us(covered_us, t.span) AS measured_us, websentry_down_us(covered_us, down_us, t.span) AS down_us,
            b0, b1, b2, b3, b4, b5, b6, b7,
            b8, b9, b10, b11, b12, b13, b14, b15,
            b16, b17, b18, b19, b20, b21, b22, b23,
            b24, b25, b26, b27, b28, b29, b30, b31,
            b32, b33, b34, b35, b36, b37, b38, b39,
            b40, b41, b42, b43, b44, b45, b46, b47,
            b48, b49, b50, b51, b52, b53, b54, b55,
            b56, b57, b58, b59, b60, b61, b62, b63,
            b64, b65, b66, b67, b68, b69, b70, b71,
            b72, b73, b74, b75, b76, b77, b78, b79,
            b80, b81, b82, b83, b84, b85, b86, b87,
            b88, b89, b90, b91, b92, b93, b94, b95,
            b96, b97, b98, b99, b100, b101, b102, b103,
            b104, b105, b106, b107, b108, b109, b110, b111,
            b112, b113, b114, b115, b116, b117, b118, b119,
            b120, b121, b122, b123, b124, b125, b126, b127
    FROM rollup_daily,
         LATERAL (SELECT CASE WHEN day < today THEN 86400e6::double precision
                           ELSE websentry_span_us(day::timestamp AT TIME ZONE 'UTC', interval '1 day') END AS span) t
    WHERE (d1_lo < d1_hi OR d2_lo < d2_hi) AND ((day >= d1_lo AND day < d1_hi) OR (day >= d2_lo AND day < d2_hi))
    UNION ALL
    SELECT url, probe, probes, successes, last_checked_at, inconclusive,
           websentry_measured_us(covered_us, t.span) AS measured_us, websentry_down_us(covered_us, down_us, t.span) AS down_us,
            b0, b1, b2, b3, b4, b5, b6, b7,
            b8, b9, b10, b11, b12, b13, b14, b15,
            b16, b17, b18, b19, b20, b21, b22, b23,
            b24, b25, b26, b27, b28, b29, b30, b31,
            b32, b33, b34, b35, b36, b37, b38, b39,
            b40, b41, b42, b43, b44, b45, b46, b47,
            b48, b49, b50, b51, b52, b53, b54, b55,
            b56, b57, b58, b59, b60, b61, b62, b63,
            b64, b65, b66, b67, b68, b69, b70, b71,
            b72, b73, b74, b75, b76, b77, b78, b79,
            b80, b81, b82, b83, b84, b85, b86, b87,
            b88, b89, b90, b91, b92, b93, b94, b95,
            b96, b97, b98, b99, b100, b101, b102, b103,
            b104, b105, b106, b107, b108, b109, b110, b111,
            b112, b113, b114, b115, b116, b117, b118, b119,
            b120, b121, b122, b123, b124, b125, b126, b127
    FROM rollup_hourly, LATERAL (SELECT CASE WHEN hour < this_hour THEN 3600e6::double precision
                                           ELSE websentry_span_us(hour, interval '1 hour') END AS span) t
    WHERE (h1_lo < h1_hi OR h2_lo < h2_hi) AND ((hour >= h1_lo AND hour < h1_hi) OR (hour >= h2_lo AND hour < h2_hi))
    UNION ALL
    SELECT url, probe, probes, successes, last_checked_at, inconclusive, measured_us, down_us,
            b0, b1, b2, b3, b4, b5, b6, b7,
            b8, b9, b10, b11, b12, b13, b14, b15,
            b16, b17, b18, b19, b20, b21, b22, b23,
            b24, b25, b26, b27, b28, b29, b30, b31,
            b32, b33, b34, b35, b36, b37, b38, b39,
            b40, b41, b42, b43, b44, b45, b46, b47,
            b48, b49, b50, b51, b52, b53, b54, b55,
            b56, b57, b58, b59, b60, b61, b62, b63,
            b64, b65, b66, b67, b68, b69, b70, b71,
            b72, b73, b74, b75, b76, b77, b78, b79,
            b80, b81, b82, b83, b84, b85, b86, b87,
            b88, b89, b90, b91, b92, b93, b94, b95,
            b96, b97, b98, b99, b100, b101, b102, b103,
            b104, b105, b106, b107, b108, b109, b110, b111,
            b112, b113, b114, b115, b116, b117, b118, b119,
            b120, b121, b122, b123, b124, b125, b126, b127
    FROM rollup_window_sums WHERE window_id = ANY (kept)
$$;
COMMENT ON FUNCTION websentry_window_parts(date, date, date, date, timestamptz, timestamptz, timestamptz, timestamptz, date, timestamptz, bigint[]) IS
    'Helper of site_summary: the rollup rows of a window''s two daily and two hourly ranges, their measured and down time capped at each bucket''s span, and the sums kept for windows (rollup_window_sums).';

-- The calendar months kept inside [days_from, days_to) (websentry_keep_windows sums each closed month
-- like a window: its cutoff is its end), when they are a run without a gap: the first one's start,
-- the last one's end and their ids. A month counts while no batch noted since its snapshot wrote
-- into it, as for websentry_kept_window. No row when there is none, or a gap (a month voided and
-- not summed again yet): the days are then read from the daily rows, all of them.
CREATE OR REPLACE FUNCTION websentry_kept_months(days_from timestamptz, days_to timestamptz)
    RETURNS TABLE (lo timestamptz, hi timestamptz, ids bigint[])
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT min(k.lo), max(k.hi), array_agg(k.id)
    FROM rollup_windows k
    WHERE k.lo >= days_from AND k.hi <= days_to AND k.cutoff = k.hi AND k.day_lo = k.lo AND k.day_hi = k.hi
      AND k.lo = date_trunc('month', k.lo AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
      AND k.hi = (date_trunc('month', k.lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
      AND NOT EXISTS (SELECT FROM rollup_writes w WHERE w.id > k.seen AND w.earliest < k.cutoff AND w.latest >= k.lo)
    HAVING count(*) > 0
       AND count(*) = (SELECT extract(year FROM a) * 12 + extract(month FROM a)
                       FROM age(max(k.hi) AT TIME ZONE 'UTC', min(k.lo) AT TIME ZONE 'UTC') a)
$$;
COMMENT ON FUNCTION websentry_kept_months(timestamptz, timestamptz) IS
    'Helper of site_summary: the calendar months kept (rollup_windows) inside a range of whole days, when they follow each other without a gap: from, to and their ids.';

-- The calendar month kept that a time falls inside (not at its start), when it counts (as for
-- websentry_kept_months): its id and bounds. site_summary reads a window that starts or ends
-- inside a closed month as that month's sums less the part outside the window, when that part is
-- the smaller one.
CREATE OR REPLACE FUNCTION websentry_kept_month_around(t timestamptz)
    RETURNS TABLE (id bigint, lo timestamptz, hi timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT k.id, k.lo, k.hi
    FROM rollup_windows k
    WHERE k.lo = date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AND k.lo < t
      AND k.hi = (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
      AND k.cutoff = k.hi AND k.day_lo = k.lo AND k.day_hi = k.hi
      AND NOT EXISTS (SELECT FROM rollup_writes w WHERE w.id > k.seen AND w.earliest < k.cutoff AND w.latest >= k.lo)
$$;
COMMENT ON FUNCTION websentry_kept_month_around(timestamptz) IS
    'Helper of site_summary: the calendar month kept (rollup_windows) that a time falls inside, past its start, unless a rollup write noted after it reaches into it.';

-- One site. Read through the rollups' primary keys. Pooled: one row for all its locations (probe
-- NULL), their rows summed (each capped at its bucket first), over `locations` of them.
CREATE OR REPLACE FUNCTION websentry_site_summary_one(window_start timestamptz, window_end timestamptz, site text,
                                                      pooled boolean)
    RETURNS TABLE (url text, probe text, locations integer, probes bigint, successes bigint, uptime double precision,
                   p50_ms double precision, p95_ms double precision, p99_ms double precision,
                   last_checked_at timestamptz, inconclusive bigint, coverage double precision,
                   measured_s double precision, unknown_s double precision, down_s double precision,
                   measured_uptime double precision)
    LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    lo timestamptz;
    hi timestamptz;
    day_lo timestamptz;
    day_hi timestamptz;
BEGIN
    SELECT b.lo, b.hi, b.day_lo, b.day_hi INTO lo, hi, day_lo, day_hi FROM websentry_summary_bounds(window_start, window_end) b;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT s.url, s.probe, s.locations, s.probes, s.successes, s.successes::double precision / nullif(s.probes, 0),
               s.q[1], s.q[2], s.q[3], s.last_checked_at, s.inconclusive,
               m.coverage, m.measured_s, m.unknown_s, m.down_s, m.measured_uptime
        FROM (SELECT p.url, CASE WHEN pooled THEN NULL ELSE p.probe END AS probe,
                     count(DISTINCT p.probe)::integer AS locations,
                     sum(p.probes)::bigint AS probes, sum(p.successes)::bigint AS successes,
                     max(p.last_checked_at) AS last_checked_at, sum(p.inconclusive)::bigint AS inconclusive,
                     sum(p.measured_us) AS measured_us, sum(p.down_us) AS down_us,
                     websentry_percentiles(ARRAY[
                          sum(b0), sum(b1), sum(b2), sum(b3), sum(b4), sum(b5), sum(b6), sum(b7),
                          sum(b8), sum(b9), sum(b10), sum(b11), sum(b12), sum(b13), sum(b14), sum(b15),
                          sum(b16), sum(b17), sum(b18), sum(b19), sum(b20), sum(b21), sum(b22), sum(b23),
                          sum(b24), sum(b25), sum(b26), sum(b27), sum(b28), sum(b29), sum(b30), sum(b31),
                          sum(b32), sum(b33), sum(b34), sum(b35), sum(b36), sum(b37), sum(b38), sum(b39),
                          sum(b40), sum(b41), sum(b42), sum(b43), sum(b44), sum(b45), sum(b46), sum(b47),
                          sum(b48), sum(b49), sum(b50), sum(b51), sum(b52), sum(b53), sum(b54), sum(b55),
                          sum(b56), sum(b57), sum(b58), sum(b59), sum(b60), sum(b61), sum(b62), sum(b63),
                          sum(b64), sum(b65), sum(b66), sum(b67), sum(b68), sum(b69), sum(b70), sum(b71),
                          sum(b72), sum(b73), sum(b74), sum(b75), sum(b76), sum(b77), sum(b78), sum(b79),
                          sum(b80), sum(b81), sum(b82), sum(b83), sum(b84), sum(b85), sum(b86), sum(b87),
                          sum(b88), sum(b89), sum(b90), sum(b91), sum(b92), sum(b93), sum(b94), sum(b95),
                          sum(b96), sum(b97), sum(b98), sum(b99), sum(b100), sum(b101), sum(b102), sum(b103),
                          sum(b104), sum(b105), sum(b106), sum(b107), sum(b108), sum(b109), sum(b110), sum(b111),
                          sum(b112), sum(b113), sum(b114), sum(b115), sum(b116), sum(b117), sum(b118), sum(b119),
                          sum(b120), sum(b121), sum(b122), sum(b123), sum(b124), sum(b125), sum(b126), sum(b127)
                     ]::bigint[]) AS q
              FROM (SELECT url, probe, probes, successes, last_checked_at, inconclusive,
                           websentry_measured_us(covered_us, t.span) AS measured_us, websentry_down_us(covered_us, down_us, t.span) AS down_us,
                      b0, b1, b2, b3, b4, b5, b6, b7,
                      b8, b9, b10, b11, b12, b13, b14, b15,
                      b16, b17, b18, b19, b20, b21, b22, b23,
                      b24, b25, b26, b27, b28, b29, b30, b31,
                      b32, b33, b34, b35, b36, b37, b38, b39,
                      b40, b41, b42, b43, b44, b45, b46, b47,
                      b48, b49, b50, b51, b52, b53, b54, b55,
                      b56, b57, b58, b59, b60, b61, b62, b63,
                      b64, b65, b66, b67, b68, b69, b70, b71,
                      b72, b73, b74, b75, b76, b77, b78, b79,
                      b80, b81, b82, b83, b84, b85, b86, b87,
                      b88, b89, b90, b91, b92, b93, b94, b95,
                      b96, b97, b98, b99, b100, b101, b102, b103,
                      b104, b105, b106, b107, b108, b109, b110, b111,
                      b112, b113, b114, b115, b116, b117, b118, b119,
                      b120, b121, b122, b123, b124, b125, b126, b127
                    FROM rollup_daily,
                         LATERAL (SELECT websentry_span_us(day::timestamp AT TIME ZONE 'UTC', interval '1 day') AS span) t
                    WHERE url = site AND day >= (day_lo AT TIME ZONE 'UTC')::date AND day < (day_hi AT TIME ZONE 'UTC')::date
                    UNION ALL
                    SELECT url, probe, probes, successes, last_checked_at, inconclusive,
                           websentry_measured_us(covered_us, t.span) AS measured_us, websentry_down_us(covered_us, down_us, t.span) AS down_us,
                      b0, b1, b2, b3, b4, b5, b6, b7,
                      b8, b9, b10, b11, b12, b13, b14, b15,
                      b16, b17, b18, b19, b20, b21, b22, b23,
                      b24, b25, b26, b27, b28, b29, b30, b31,
                      b32, b33, b34, b35, b36, b37, b38, b39,
                      b40, b41, b42, b43, b44, b45, b46, b47,
                      b48, b49, b50, b51, b52, b53, b54, b55,
                      b56, b57, b58, b59, b60, b61, b62, b63,
                      b64, b65, b66, b67, b68, b69, b70, b71,
                      b72, b73, b74, b75, b76, b77, b78, b79,
                      b80, b81, b82, b83, b84, b85, b86, b87,
                      b88, b89, b90, b91, b92, b93, b94, b95,
                      b96, b97, b98, b99, b100, b101, b102, b103,
                      b104, b105, b106, b107, b108, b109, b110, b111,
                      b112, b113, b114, b115, b116, b117, b118, b119,
                      b120, b121, b122, b123, b124, b125, b126, b127
                    FROM rollup_hourly, LATERAL (SELECT websentry_span_us(hour, interval '1 hour') AS span) t
                    WHERE url = site AND ((hour >= lo AND hour < day_lo) OR (hour >= day_hi AND hour < hi))) p
              GROUP BY p.url, CASE WHEN pooled THEN NULL ELSE p.probe END) s,
             websentry_window_measured(lo, hi, s.measured_us, s.down_us, s.locations) m;
END $$;
COMMENT ON FUNCTION websentry_site_summary_one(timestamptz, timestamptz, text, boolean) IS
    'Helper of site_summary and site_summary_pooled: the answer for one site, per location or pooled.';

-- All sites. The percentiles are computed in the query rather than by websentry_percentiles per row
-- (a plpgsql loop over 128 buckets: 0.48 s against 0.21 s for 1,000 sites over 19,000 rollup rows):
-- the bucket sums z0…z127 become a cumulative array c, and the bucket of rank r is the number of
-- cumulative counts below r, `width_bucket(r - 1, c)` (a binary search). The cumulative sums are
-- built in three fenced steps (OFFSET 0 keeps the planner from merging them back into one quadratic
-- expression): sums of 16 groups of 8 buckets (g), the sum of the groups before each group (e), then
-- each bucket's total from its group's start. Same ranks and results as websentry_percentiles.
-- plan_cache_mode: each call is planned for its own window (the rollups are read by day and hour),
-- and for pooled or not: the branch of `merged` not taken is pruned, so per location costs no more.
-- Pooled, the sums of each (url, probe) are summed again per url (probe NULL). `sums` is inlined
-- into the branch taken (NOT MATERIALIZED): named twice, it was materialised, its rows of 140 sums
-- written to a tuplestore and read back, ~15 % of a kept window's answer for 10,000 sites.
CREATE OR REPLACE FUNCTION websentry_site_summary_all(window_start timestamptz, window_end timestamptz,
                                                      pooled boolean, with_latency boolean)
    RETURNS TABLE (url text, probe text, locations integer, probes bigint, successes bigint, uptime double precision,
                   p50_ms double precision, p95_ms double precision, p99_ms double precision,
                   last_checked_at timestamptz, inconclusive bigint, coverage double precision,
                   measured_s double precision, unknown_s double precision, down_s double precision,
                   measured_uptime double precision)
    LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
DECLARE
    lo timestamptz;
    hi timestamptz;
    day_lo timestamptz;
    day_hi timestamptz;
    -- Buckets before these are over: their span is their whole length, without working it out
    -- per row from now() (a timestamp and an interval added, for each of millions of rows).
    today date := (now() AT TIME ZONE 'UTC')::date;
    this_hour timestamptz := date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    -- The window's answer kept by the upkeep, if any: its sums up to kept_until, to which the
    -- buckets after it are added.
    kept_id bigint;
    kept_until timestamptz;
    -- Otherwise the calendar months kept inside its days, [months_lo, months_hi), if any: the days
    -- before and after them are read from the daily rows.
    months_lo timestamptz;
    months_hi timestamptz;
    month_ids bigint[];
    -- A closed month kept that the window starts inside (s_) or ends inside (e_), read as its sums
    -- less its whole days outside the window's whole days, when those are fewer: the window's
    -- part in it otherwise costs a daily row per site for each of its days. Its edge hours are read
    -- as before (a day's sums less some of its hours would differ from its hours wherever a
    -- bucket is capped at its span). The sums of a site can cancel out (it reported only outside
    -- the window): measured time 0 is none, and a site with no probe and none is not in the
    -- answer. The month's last report counts when it is in the window; where the window ends
    -- inside a month, the last one of its days before the window's last whole day is looked up.
    s_id bigint;
    s_lo timestamptz;
    s_hi timestamptz;
    e_id bigint;
    e_lo timestamptz;
    e_hi timestamptz;
    subtracting boolean;
    -- The days read from the daily rows: [days_from, days_to), less the months inside.
    days_from timestamptz;
    days_to timestamptz;
    -- The window's last whole day, read as its row too where the window ends inside a month (and
    -- taken off that month): its last report is then the window's for every site that reported
    -- that day or after, and only the others are looked up.
    last_day timestamptz;
BEGIN
    SELECT b.lo, b.hi, b.day_lo, b.day_hi INTO lo, hi, day_lo, day_hi FROM websentry_summary_bounds(window_start, window_end) b;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT k.id, k.until INTO kept_id, kept_until FROM websentry_kept_window(window_start, window_end) k;
    kept_until := coalesce(kept_until, '-infinity');
    IF kept_id IS NULL THEN
        SELECT m.lo, m.hi, m.ids INTO months_lo, months_hi, month_ids FROM websentry_kept_months(day_lo, day_hi) m;
        -- Only for a window that has passed, but for the current hour: a bucket still to come
        -- measures 0 (its span has not begun), which the sums could not tell from none. Months
        -- are kept for the last 13 (websentry_keep_windows): no bound further back is looked up.
        -- (The conditions outside the queries: there, lo and hi would name the months' columns.)
        IF hi <= this_hour + interval '1 hour' AND lo > now() - interval '15 months' THEN
            SELECT m.id, m.lo, m.hi INTO s_id, s_lo, s_hi FROM websentry_kept_month_around(lo) m;
            IF NOT (s_hi <= hi AND day_lo - s_lo < s_hi - day_lo) THEN
                s_id := NULL;
            END IF;
        END IF;
        IF hi <= this_hour AND hi > now() - interval '15 months' THEN
            SELECT m.id, m.lo, m.hi INTO e_id, e_lo, e_hi FROM websentry_kept_month_around(hi) m;
            IF NOT (e_lo >= lo AND e_hi - day_hi < day_hi - e_lo) THEN
                e_id := NULL;
            END IF;
        END IF;
    END IF;
    subtracting := s_id IS NOT NULL OR e_id IS NOT NULL;
    days_from := CASE WHEN s_id IS NOT NULL THEN s_hi ELSE day_lo END;
    days_to := CASE WHEN e_id IS NOT NULL THEN e_lo ELSE day_hi END;
    last_day := CASE WHEN e_id IS NOT NULL THEN day_hi - interval '1 day' END;
    RETURN QUERY
        WITH parts AS (
            SELECT * FROM websentry_window_parts(
                greatest((days_from AT TIME ZONE 'UTC')::date, websentry_first_day_after(kept_until)),
                (coalesce(months_lo, days_to) AT TIME ZONE 'UTC')::date,
                (coalesce(months_hi, days_to) AT TIME ZONE 'UTC')::date, (days_to AT TIME ZONE 'UTC')::date,
                greatest(lo, kept_until), day_lo, greatest(day_hi, kept_until), hi,
                today, this_hour,
                CASE WHEN kept_id IS NOT NULL THEN ARRAY[kept_id]
                     ELSE array_remove(coalesce(month_ids, '{}') || ARRAY[s_id, e_id], NULL) END)
            UNION ALL
            SELECT * FROM websentry_window_parts(
                CASE WHEN e_id IS NOT NULL THEN (last_day AT TIME ZONE 'UTC')::date ELSE today END,
                CASE WHEN e_id IS NOT NULL THEN (day_hi AT TIME ZONE 'UTC')::date ELSE today END,
                today, today, this_hour, this_hour, this_hour, this_hour, today, this_hour, NULL)
            WHERE e_id IS NOT NULL
            UNION ALL
            -- The whole days of the months read whole that are outside the window's (and the
            -- window's last whole day, read above), less.
            SELECT url, probe, -probes, -successes, NULL::timestamptz, -inconclusive, -measured_us, -down_us,
                   -b0, -b1, -b2, -b3, -b4, -b5, -b6, -b7, -b8, -b9, -b10, -b11, -b12, -b13, -b14, -b15,
                   -b16, -b17, -b18, -b19, -b20, -b21, -b22, -b23, -b24, -b25, -b26, -b27, -b28, -b29, -b30, -b31,
                   -b32, -b33, -b34, -b35, -b36, -b37, -b38, -b39, -b40, -b41, -b42, -b43, -b44, -b45, -b46, -b47,
                   -b48, -b49, -b50, -b51, -b52, -b53, -b54, -b55, -b56, -b57, -b58, -b59, -b60, -b61, -b62, -b63,
                   -b64, -b65, -b66, -b67, -b68, -b69, -b70, -b71, -b72, -b73, -b74, -b75, -b76, -b77, -b78, -b79,
                   -b80, -b81, -b82, -b83, -b84, -b85, -b86, -b87, -b88, -b89, -b90, -b91, -b92, -b93, -b94, -b95,
                   -b96, -b97, -b98, -b99, -b100, -b101, -b102, -b103, -b104, -b105, -b106, -b107, -b108, -b109, -b110, -b111,
                   -b112, -b113, -b114, -b115, -b116, -b117, -b118, -b119, -b120, -b121, -b122, -b123, -b124, -b125, -b126, -b127
            FROM websentry_window_parts(
                CASE WHEN s_id IS NOT NULL THEN (s_lo AT TIME ZONE 'UTC')::date ELSE today END,
                CASE WHEN s_id IS NOT NULL THEN (day_lo AT TIME ZONE 'UTC')::date ELSE today END,
                CASE WHEN e_id IS NOT NULL THEN (last_day AT TIME ZONE 'UTC')::date ELSE today END,
                CASE WHEN e_id IS NOT NULL THEN (e_hi AT TIME ZONE 'UTC')::date ELSE today END,
                this_hour, this_hour, this_hour, this_hour, today, this_hour, NULL)
            -- Not read at all otherwise (a constant when the query is planned): an empty range of
            -- days still costs a scan of the day index and of what it cannot rule out.
            WHERE subtracting
        ), sums AS NOT MATERIALIZED (
            SELECT url, probe, sum(probes)::bigint AS probes, sum(successes)::bigint AS successes,
                   -- A kept answer's last report may be outside the window (a month read whole);
                   -- where the window ends inside a month, a site that reported neither on its
                   -- last whole day nor after has its last report there looked up (the last day
                   -- before with a probe).
                   CASE WHEN e_id IS NOT NULL
                             AND NOT coalesce(max(last_checked_at) FILTER (WHERE last_checked_at >= lo AND last_checked_at < hi) >= last_day, false)
                        THEN greatest(max(last_checked_at) FILTER (WHERE last_checked_at >= lo AND last_checked_at < hi),
                                      (SELECT d.last_checked_at FROM rollup_daily d
                                       WHERE d.url = parts.url AND d.probe = parts.probe
                                         AND d.day >= (e_lo AT TIME ZONE 'UTC')::date AND d.day < (last_day AT TIME ZONE 'UTC')::date
                                         AND d.probes > 0 ORDER BY d.day DESC LIMIT 1))
                        ELSE max(last_checked_at) FILTER (WHERE last_checked_at >= lo AND last_checked_at < hi)
                   END AS last_checked_at,
                   sum(inconclusive)::bigint AS inconclusive,
                   CASE WHEN subtracting THEN nullif(sum(measured_us), 0) ELSE sum(measured_us) END AS measured_us,
                   sum(down_us) AS down_us,
                CASE WHEN with_latency THEN coalesce(sum(b0), 0)::bigint END AS z0, CASE WHEN with_latency THEN coalesce(sum(b1), 0)::bigint END AS z1, CASE WHEN with_latency THEN coalesce(sum(b2), 0)::bigint END AS z2, CASE WHEN with_latency THEN coalesce(sum(b3), 0)::bigint END AS z3,
                CASE WHEN with_latency THEN coalesce(sum(b4), 0)::bigint END AS z4, CASE WHEN with_latency THEN coalesce(sum(b5), 0)::bigint END AS z5, CASE WHEN with_latency THEN coalesce(sum(b6), 0)::bigint END AS z6, CASE WHEN with_latency THEN coalesce(sum(b7), 0)::bigint END AS z7,
                CASE WHEN with_latency THEN coalesce(sum(b8), 0)::bigint END AS z8, CASE WHEN with_latency THEN coalesce(sum(b9), 0)::bigint END AS z9, CASE WHEN with_latency THEN coalesce(sum(b10), 0)::bigint END AS z10, CASE WHEN with_latency THEN coalesce(sum(b11), 0)::bigint END AS z11,
                CASE WHEN with_latency THEN coalesce(sum(b12), 0)::bigint END AS z12, CASE WHEN with_latency THEN coalesce(sum(b13), 0)::bigint END AS z13, CASE WHEN with_latency THEN coalesce(sum(b14), 0)::bigint END AS z14, CASE WHEN with_latency THEN coalesce(sum(b15), 0)::bigint END AS z15,
                CASE WHEN with_latency THEN coalesce(sum(b16), 0)::bigint END AS z16, CASE WHEN with_latency THEN coalesce(sum(b17), 0)::bigint END AS z17, CASE WHEN with_latency THEN coalesce(sum(b18), 0)::bigint END AS z18, CASE WHEN with_latency THEN coalesce(sum(b19), 0)::bigint END AS z19,
                CASE WHEN with_latency THEN coalesce(sum(b20), 0)::bigint END AS z20, CASE WHEN with_latency THEN coalesce(sum(b21), 0)::bigint END AS z21, CASE WHEN with_latency THEN coalesce(sum(b22), 0)::bigint END AS z22, CASE WHEN with_latency THEN coalesce(sum(b23), 0)::bigint END AS z23,
                CASE WHEN with_latency THEN coalesce(sum(b24), 0)::bigint END AS z24, CASE WHEN with_latency THEN coalesce(sum(b25), 0)::bigint END AS z25, CASE WHEN with_latency THEN coalesce(sum(b26), 0)::bigint END AS z26, CASE WHEN with_latency THEN coalesce(sum(b27), 0)::bigint END AS z27,
                CASE WHEN with_latency THEN coalesce(sum(b28), 0)::bigint END AS z28, CASE WHEN with_latency THEN coalesce(sum(b29), 0)::bigint END AS z29, CASE WHEN with_latency THEN coalesce(sum(b30), 0)::bigint END AS z30, CASE WHEN with_latency THEN coalesce(sum(b31), 0)::bigint END AS z31,
                CASE WHEN with_latency THEN coalesce(sum(b32), 0)::bigint END AS z32, CASE WHEN with_latency THEN coalesce(sum(b33), 0)::bigint END AS z33, CASE WHEN with_latency THEN coalesce(sum(b34), 0)::bigint END AS z34, CASE WHEN with_latency THEN coalesce(sum(b35), 0)::bigint END AS z35,
                CASE WHEN with_latency THEN coalesce(sum(b36), 0)::bigint END AS z36, CASE WHEN with_latency THEN coalesce(sum(b37), 0)::bigint END AS z37, CASE WHEN with_latency THEN coalesce(sum(b38), 0)::bigint END AS z38, CASE WHEN with_latency THEN coalesce(sum(b39), 0)::bigint END AS z39,
                CASE WHEN with_latency THEN coalesce(sum(b40), 0)::bigint END AS z40, CASE WHEN with_latency THEN coalesce(sum(b41), 0)::bigint END AS z41, CASE WHEN with_latency THEN coalesce(sum(b42), 0)::bigint END AS z42, CASE WHEN with_latency THEN coalesce(sum(b43), 0)::bigint END AS z43,
                CASE WHEN with_latency THEN coalesce(sum(b44), 0)::bigint END AS z44, CASE WHEN with_latency THEN coalesce(sum(b45), 0)::bigint END AS z45, CASE WHEN with_latency THEN coalesce(sum(b46), 0)::bigint END AS z46, CASE WHEN with_latency THEN coalesce(sum(b47), 0)::bigint END AS z47,
                CASE WHEN with_latency THEN coalesce(sum(b48), 0)::bigint END AS z48, CASE WHEN with_latency THEN coalesce(sum(b49), 0)::bigint END AS z49, CASE WHEN with_latency THEN coalesce(sum(b50), 0)::bigint END AS z50, CASE WHEN with_latency THEN coalesce(sum(b51), 0)::bigint END AS z51,
                CASE WHEN with_latency THEN coalesce(sum(b52), 0)::bigint END AS z52, CASE WHEN with_latency THEN coalesce(sum(b53), 0)::bigint END AS z53, CASE WHEN with_latency THEN coalesce(sum(b54), 0)::bigint END AS z54, CASE WHEN with_latency THEN coalesce(sum(b55), 0)::bigint END AS z55,
                CASE WHEN with_latency THEN coalesce(sum(b56), 0)::bigint END AS z56, CASE WHEN with_latency THEN coalesce(sum(b57), 0)::bigint END AS z57, CASE WHEN with_latency THEN coalesce(sum(b58), 0)::bigint END AS z58, CASE WHEN with_latency THEN coalesce(sum(b59), 0)::bigint END AS z59,
                CASE WHEN with_latency THEN coalesce(sum(b60), 0)::bigint END AS z60, CASE WHEN with_latency THEN coalesce(sum(b61), 0)::bigint END AS z61, CASE WHEN with_latency THEN coalesce(sum(b62), 0)::bigint END AS z62, CASE WHEN with_latency THEN coalesce(sum(b63), 0)::bigint END AS z63,
                CASE WHEN with_latency THEN coalesce(sum(b64), 0)::bigint END AS z64, CASE WHEN with_latency THEN coalesce(sum(b65), 0)::bigint END AS z65, CASE WHEN with_latency THEN coalesce(sum(b66), 0)::bigint END AS z66, CASE WHEN with_latency THEN coalesce(sum(b67), 0)::bigint END AS z67,
                CASE WHEN with_latency THEN coalesce(sum(b68), 0)::bigint END AS z68, CASE WHEN with_latency THEN coalesce(sum(b69), 0)::bigint END AS z69, CASE WHEN with_latency THEN coalesce(sum(b70), 0)::bigint END AS z70, CASE WHEN with_latency THEN coalesce(sum(b71), 0)::bigint END AS z71,
                CASE WHEN with_latency THEN coalesce(sum(b72), 0)::bigint END AS z72, CASE WHEN with_latency THEN coalesce(sum(b73), 0)::bigint END AS z73, CASE WHEN with_latency THEN coalesce(sum(b74), 0)::bigint END AS z74, CASE WHEN with_latency THEN coalesce(sum(b75), 0)::bigint END AS z75,
                CASE WHEN with_latency THEN coalesce(sum(b76), 0)::bigint END AS z76, CASE WHEN with_latency THEN coalesce(sum(b77), 0)::bigint END AS z77, CASE WHEN with_latency THEN coalesce(sum(b78), 0)::bigint END AS z78, CASE WHEN with_latency THEN coalesce(sum(b79), 0)::bigint END AS z79,
                CASE WHEN with_latency THEN coalesce(sum(b80), 0)::bigint END AS z80, CASE WHEN with_latency THEN coalesce(sum(b81), 0)::bigint END AS z81, CASE WHEN with_latency THEN coalesce(sum(b82), 0)::bigint END AS z82, CASE WHEN with_latency THEN coalesce(sum(b83), 0)::bigint END AS z83,
                CASE WHEN with_latency THEN coalesce(sum(b84), 0)::bigint END AS z84, CASE WHEN with_latency THEN coalesce(sum(b85), 0)::bigint END AS z85, CASE WHEN with_latency THEN coalesce(sum(b86), 0)::bigint END AS z86, CASE WHEN with_latency THEN coalesce(sum(b87), 0)::bigint END AS z87,
                CASE WHEN with_latency THEN coalesce(sum(b88), 0)::bigint END AS z88, CASE WHEN with_latency THEN coalesce(sum(b89), 0)::bigint END AS z89, CASE WHEN with_latency THEN coalesce(sum(b90), 0)::bigint END AS z90, CASE WHEN with_latency THEN coalesce(sum(b91), 0)::bigint END AS z91,
                CASE WHEN with_latency THEN coalesce(sum(b92), 0)::bigint END AS z92, CASE WHEN with_latency THEN coalesce(sum(b93), 0)::bigint END AS z93, CASE WHEN with_latency THEN coalesce(sum(b94), 0)::bigint END AS z94, CASE WHEN with_latency THEN coalesce(sum(b95), 0)::bigint END AS z95,
                CASE WHEN with_latency THEN coalesce(sum(b96), 0)::bigint END AS z96, CASE WHEN with_latency THEN coalesce(sum(b97), 0)::bigint END AS z97, CASE WHEN with_latency THEN coalesce(sum(b98), 0)::bigint END AS z98, CASE WHEN with_latency THEN coalesce(sum(b99), 0)::bigint END AS z99,
                CASE WHEN with_latency THEN coalesce(sum(b100), 0)::bigint END AS z100, CASE WHEN with_latency THEN coalesce(sum(b101), 0)::bigint END AS z101, CASE WHEN with_latency THEN coalesce(sum(b102), 0)::bigint END AS z102, CASE WHEN with_latency THEN coalesce(sum(b103), 0)::bigint END AS z103,
                CASE WHEN with_latency THEN coalesce(sum(b104), 0)::bigint END AS z104, CASE WHEN with_latency THEN coalesce(sum(b105), 0)::bigint END AS z105, CASE WHEN with_latency THEN coalesce(sum(b106), 0)::bigint END AS z106, CASE WHEN with_latency THEN coalesce(sum(b107), 0)::bigint END AS z107,
                CASE WHEN with_latency THEN coalesce(sum(b108), 0)::bigint END AS z108, CASE WHEN with_latency THEN coalesce(sum(b109), 0)::bigint END AS z109, CASE WHEN with_latency THEN coalesce(sum(b110), 0)::bigint END AS z110, CASE WHEN with_latency THEN coalesce(sum(b111), 0)::bigint END AS z111,
                CASE WHEN with_latency THEN coalesce(sum(b112), 0)::bigint END AS z112, CASE WHEN with_latency THEN coalesce(sum(b113), 0)::bigint END AS z113, CASE WHEN with_latency THEN coalesce(sum(b114), 0)::bigint END AS z114, CASE WHEN with_latency THEN coalesce(sum(b115), 0)::bigint END AS z115,
                CASE WHEN with_latency THEN coalesce(sum(b116), 0)::bigint END AS z116, CASE WHEN with_latency THEN coalesce(sum(b117), 0)::bigint END AS z117, CASE WHEN with_latency THEN coalesce(sum(b118), 0)::bigint END AS z118, CASE WHEN with_latency THEN coalesce(sum(b119), 0)::bigint END AS z119,
                CASE WHEN with_latency THEN coalesce(sum(b120), 0)::bigint END AS z120, CASE WHEN with_latency THEN coalesce(sum(b121), 0)::bigint END AS z121, CASE WHEN with_latency THEN coalesce(sum(b122), 0)::bigint END AS z122, CASE WHEN with_latency THEN coalesce(sum(b123), 0)::bigint END AS z123,
                CASE WHEN with_latency THEN coalesce(sum(b124), 0)::bigint END AS z124, CASE WHEN with_latency THEN coalesce(sum(b125), 0)::bigint END AS z125, CASE WHEN with_latency THEN coalesce(sum(b126), 0)::bigint END AS z126, CASE WHEN with_latency THEN coalesce(sum(b127), 0)::bigint END AS z127
            FROM parts GROUP BY url, probe
            HAVING NOT subtracting OR sum(probes) > 0 OR sum(measured_us) > 0
        ), merged AS NOT MATERIALIZED (
            SELECT url, probe, 1 AS locations, probes, successes, last_checked_at, inconclusive, measured_us, down_us,
                z0, z1, z2, z3, z4, z5, z6, z7, z8, z9, z10, z11, z12, z13, z14, z15,
                z16, z17, z18, z19, z20, z21, z22, z23, z24, z25, z26, z27, z28, z29, z30, z31,
                z32, z33, z34, z35, z36, z37, z38, z39, z40, z41, z42, z43, z44, z45, z46, z47,
                z48, z49, z50, z51, z52, z53, z54, z55, z56, z57, z58, z59, z60, z61, z62, z63,
                z64, z65, z66, z67, z68, z69, z70, z71, z72, z73, z74, z75, z76, z77, z78, z79,
                z80, z81, z82, z83, z84, z85, z86, z87, z88, z89, z90, z91, z92, z93, z94, z95,
                z96, z97, z98, z99, z100, z101, z102, z103, z104, z105, z106, z107, z108, z109, z110, z111,
                z112, z113, z114, z115, z116, z117, z118, z119, z120, z121, z122, z123, z124, z125, z126, z127
            FROM sums WHERE NOT pooled
            UNION ALL
            SELECT url, NULL, count(*)::integer, sum(probes)::bigint, sum(successes)::bigint, max(last_checked_at),
                   sum(inconclusive)::bigint, sum(measured_us), sum(down_us),
                CASE WHEN with_latency THEN sum(z0)::bigint END AS z0, CASE WHEN with_latency THEN sum(z1)::bigint END AS z1, CASE WHEN with_latency THEN sum(z2)::bigint END AS z2, CASE WHEN with_latency THEN sum(z3)::bigint END AS z3,
                CASE WHEN with_latency THEN sum(z4)::bigint END AS z4, CASE WHEN with_latency THEN sum(z5)::bigint END AS z5, CASE WHEN with_latency THEN sum(z6)::bigint END AS z6, CASE WHEN with_latency THEN sum(z7)::bigint END AS z7,
                CASE WHEN with_latency THEN sum(z8)::bigint END AS z8, CASE WHEN with_latency THEN sum(z9)::bigint END AS z9, CASE WHEN with_latency THEN sum(z10)::bigint END AS z10, CASE WHEN with_latency THEN sum(z11)::bigint END AS z11,
                CASE WHEN with_latency THEN sum(z12)::bigint END AS z12, CASE WHEN with_latency THEN sum(z13)::bigint END AS z13, CASE WHEN with_latency THEN sum(z14)::bigint END AS z14, CASE WHEN with_latency THEN sum(z15)::bigint END AS z15,
                CASE WHEN with_latency THEN sum(z16)::bigint END AS z16, CASE WHEN with_latency THEN sum(z17)::bigint END AS z17, CASE WHEN with_latency THEN sum(z18)::bigint END AS z18, CASE WHEN with_latency THEN sum(z19)::bigint END AS z19,
                CASE WHEN with_latency THEN sum(z20)::bigint END AS z20, CASE WHEN with_latency THEN sum(z21)::bigint END AS z21, CASE WHEN with_latency THEN sum(z22)::bigint END AS z22, CASE WHEN with_latency THEN sum(z23)::bigint END AS z23,
                CASE WHEN with_latency THEN sum(z24)::bigint END AS z24, CASE WHEN with_latency THEN sum(z25)::bigint END AS z25, CASE WHEN with_latency THEN sum(z26)::bigint END AS z26, CASE WHEN with_latency THEN sum(z27)::bigint END AS z27,
                CASE WHEN with_latency THEN sum(z28)::bigint END AS z28, CASE WHEN with_latency THEN sum(z29)::bigint END AS z29, CASE WHEN with_latency THEN sum(z30)::bigint END AS z30, CASE WHEN with_latency THEN sum(z31)::bigint END AS z31,
                CASE WHEN with_latency THEN sum(z32)::bigint END AS z32, CASE WHEN with_latency THEN sum(z33)::bigint END AS z33, CASE WHEN with_latency THEN sum(z34)::bigint END AS z34, CASE WHEN with_latency THEN sum(z35)::bigint END AS z35,
                CASE WHEN with_latency THEN sum(z36)::bigint END AS z36, CASE WHEN with_latency THEN sum(z37)::bigint END AS z37, CASE WHEN with_latency THEN sum(z38)::bigint END AS z38, CASE WHEN with_latency THEN sum(z39)::bigint END AS z39,
                CASE WHEN with_latency THEN sum(z40)::bigint END AS z40, CASE WHEN with_latency THEN sum(z41)::bigint END AS z41, CASE WHEN with_latency THEN sum(z42)::bigint END AS z42, CASE WHEN with_latency THEN sum(z43)::bigint END AS z43,
                CASE WHEN with_latency THEN sum(z44)::bigint END AS z44, CASE WHEN with_latency THEN sum(z45)::bigint END AS z45, CASE WHEN with_latency THEN sum(z46)::bigint END AS z46, CASE WHEN with_latency THEN sum(z47)::bigint END AS z47,
                CASE WHEN with_latency THEN sum(z48)::bigint END AS z48, CASE WHEN with_latency THEN sum(z49)::bigint END AS z49, CASE WHEN with_latency THEN sum(z50)::bigint END AS z50, CASE WHEN with_latency THEN sum(z51)::bigint END AS z51,
                CASE WHEN with_latency THEN sum(z52)::bigint END AS z52, CASE WHEN with_latency THEN sum(z53)::bigint END AS z53, CASE WHEN with_latency THEN sum(z54)::bigint END AS z54, CASE WHEN with_latency THEN sum(z55)::bigint END AS z55,
                CASE WHEN with_latency THEN sum(z56)::bigint END AS z56, CASE WHEN with_latency THEN sum(z57)::bigint END AS z57, CASE WHEN with_latency THEN sum(z58)::bigint END AS z58, CASE WHEN with_latency THEN sum(z59)::bigint END AS z59,
                CASE WHEN with_latency THEN sum(z60)::bigint END AS z60, CASE WHEN with_latency THEN sum(z61)::bigint END AS z61, CASE WHEN with_latency THEN sum(z62)::bigint END AS z62, CASE WHEN with_latency THEN sum(z63)::bigint END AS z63,
                CASE WHEN with_latency THEN sum(z64)::bigint END AS z64, CASE WHEN with_latency THEN sum(z65)::bigint END AS z65, CASE WHEN with_latency THEN sum(z66)::bigint END AS z66, CASE WHEN with_latency THEN sum(z67)::bigint END AS z67,
                CASE WHEN with_latency THEN sum(z68)::bigint END AS z68, CASE WHEN with_latency THEN sum(z69)::bigint END AS z69, CASE WHEN with_latency THEN sum(z70)::bigint END AS z70, CASE WHEN with_latency THEN sum(z71)::bigint END AS z71,
                CASE WHEN with_latency THEN sum(z72)::bigint END AS z72, CASE WHEN with_latency THEN sum(z73)::bigint END AS z73, CASE WHEN with_latency THEN sum(z74)::bigint END AS z74, CASE WHEN with_latency THEN sum(z75)::bigint END AS z75,
                CASE WHEN with_latency THEN sum(z76)::bigint END AS z76, CASE WHEN with_latency THEN sum(z77)::bigint END AS z77, CASE WHEN with_latency THEN sum(z78)::bigint END AS z78, CASE WHEN with_latency THEN sum(z79)::bigint END AS z79,
                CASE WHEN with_latency THEN sum(z80)::bigint END AS z80, CASE WHEN with_latency THEN sum(z81)::bigint END AS z81, CASE WHEN with_latency THEN sum(z82)::bigint END AS z82, CASE WHEN with_latency THEN sum(z83)::bigint END AS z83,
                CASE WHEN with_latency THEN sum(z84)::bigint END AS z84, CASE WHEN with_latency THEN sum(z85)::bigint END AS z85, CASE WHEN with_latency THEN sum(z86)::bigint END AS z86, CASE WHEN with_latency THEN sum(z87)::bigint END AS z87,
                CASE WHEN with_latency THEN sum(z88)::bigint END AS z88, CASE WHEN with_latency THEN sum(z89)::bigint END AS z89, CASE WHEN with_latency THEN sum(z90)::bigint END AS z90, CASE WHEN with_latency THEN sum(z91)::bigint END AS z91,
                CASE WHEN with_latency THEN sum(z92)::bigint END AS z92, CASE WHEN with_latency THEN sum(z93)::bigint END AS z93, CASE WHEN with_latency THEN sum(z94)::bigint END AS z94, CASE WHEN with_latency THEN sum(z95)::bigint END AS z95,
                CASE WHEN with_latency THEN sum(z96)::bigint END AS z96, CASE WHEN with_latency THEN sum(z97)::bigint END AS z97, CASE WHEN with_latency THEN sum(z98)::bigint END AS z98, CASE WHEN with_latency THEN sum(z99)::bigint END AS z99,
                CASE WHEN with_latency THEN sum(z100)::bigint END AS z100, CASE WHEN with_latency THEN sum(z101)::bigint END AS z101, CASE WHEN with_latency THEN sum(z102)::bigint END AS z102, CASE WHEN with_latency THEN sum(z103)::bigint END AS z103,
                CASE WHEN with_latency THEN sum(z104)::bigint END AS z104, CASE WHEN with_latency THEN sum(z105)::bigint END AS z105, CASE WHEN with_latency THEN sum(z106)::bigint END AS z106, CASE WHEN with_latency THEN sum(z107)::bigint END AS z107,
                CASE WHEN with_latency THEN sum(z108)::bigint END AS z108, CASE WHEN with_latency THEN sum(z109)::bigint END AS z109, CASE WHEN with_latency THEN sum(z110)::bigint END AS z110, CASE WHEN with_latency THEN sum(z111)::bigint END AS z111,
                CASE WHEN with_latency THEN sum(z112)::bigint END AS z112, CASE WHEN with_latency THEN sum(z113)::bigint END AS z113, CASE WHEN with_latency THEN sum(z114)::bigint END AS z114, CASE WHEN with_latency THEN sum(z115)::bigint END AS z115,
                CASE WHEN with_latency THEN sum(z116)::bigint END AS z116, CASE WHEN with_latency THEN sum(z117)::bigint END AS z117, CASE WHEN with_latency THEN sum(z118)::bigint END AS z118, CASE WHEN with_latency THEN sum(z119)::bigint END AS z119,
                CASE WHEN with_latency THEN sum(z120)::bigint END AS z120, CASE WHEN with_latency THEN sum(z121)::bigint END AS z121, CASE WHEN with_latency THEN sum(z122)::bigint END AS z122, CASE WHEN with_latency THEN sum(z123)::bigint END AS z123,
                CASE WHEN with_latency THEN sum(z124)::bigint END AS z124, CASE WHEN with_latency THEN sum(z125)::bigint END AS z125, CASE WHEN with_latency THEN sum(z126)::bigint END AS z126, CASE WHEN with_latency THEN sum(z127)::bigint END AS z127
            FROM sums WHERE pooled GROUP BY url
        ), groups AS (
            SELECT *,
                z0 + z1 + z2 + z3 + z4 + z5 + z6 + z7 AS g0,
                z8 + z9 + z10 + z11 + z12 + z13 + z14 + z15 AS g1,
                z16 + z17 + z18 + z19 + z20 + z21 + z22 + z23 AS g2,
                z24 + z25 + z26 + z27 + z28 + z29 + z30 + z31 AS g3,
                z32 + z33 + z34 + z35 + z36 + z37 + z38 + z39 AS g4,
                z40 + z41 + z42 + z43 + z44 + z45 + z46 + z47 AS g5,
                z48 + z49 + z50 + z51 + z52 + z53 + z54 + z55 AS g6,
                z56 + z57 + z58 + z59 + z60 + z61 + z62 + z63 AS g7,
                z64 + z65 + z66 + z67 + z68 + z69 + z70 + z71 AS g8,
                z72 + z73 + z74 + z75 + z76 + z77 + z78 + z79 AS g9,
                z80 + z81 + z82 + z83 + z84 + z85 + z86 + z87 AS g10,
                z88 + z89 + z90 + z91 + z92 + z93 + z94 + z95 AS g11,
                z96 + z97 + z98 + z99 + z100 + z101 + z102 + z103 AS g12,
                z104 + z105 + z106 + z107 + z108 + z109 + z110 + z111 AS g13,
                z112 + z113 + z114 + z115 + z116 + z117 + z118 + z119 AS g14,
                z120 + z121 + z122 + z123 + z124 + z125 + z126 + z127 AS g15
            FROM merged OFFSET 0
        ), befores AS (
            SELECT *,
                0::bigint AS e0,
                g0 AS e1,
                g0 + g1 AS e2,
                g0 + g1 + g2 AS e3,
                g0 + g1 + g2 + g3 AS e4,
                g0 + g1 + g2 + g3 + g4 AS e5,
                g0 + g1 + g2 + g3 + g4 + g5 AS e6,
                g0 + g1 + g2 + g3 + g4 + g5 + g6 AS e7,
                g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7 AS e8,
                g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7 + g8 AS e9,
                g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7 + g8 + g9 AS e10,
                g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7 + g8 + g9 + g10 AS e11,
                g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7 + g8 + g9 + g10 + g11 AS e12,
                g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7 + g8 + g9 + g10 + g11 + g12 AS e13,
                g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7 + g8 + g9 + g10 + g11 + g12 + g13 AS e14,
                g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7 + g8 + g9 + g10 + g11 + g12 + g13 + g14 AS e15
            FROM groups OFFSET 0
        ), cumulative AS (
            SELECT url, probe, locations, probes, successes, last_checked_at, inconclusive, measured_us, down_us, ARRAY[
                e0 + z0,
                e0 + z0 + z1,
                e0 + z0 + z1 + z2,
                e0 + z0 + z1 + z2 + z3,
                e0 + z0 + z1 + z2 + z3 + z4,
                e0 + z0 + z1 + z2 + z3 + z4 + z5,
                e0 + z0 + z1 + z2 + z3 + z4 + z5 + z6,
                e0 + z0 + z1 + z2 + z3 + z4 + z5 + z6 + z7,
                e1 + z8,
                e1 + z8 + z9,
                e1 + z8 + z9 + z10,
                e1 + z8 + z9 + z10 + z11,
                e1 + z8 + z9 + z10 + z11 + z12,
                e1 + z8 + z9 + z10 + z11 + z12 + z13,
                e1 + z8 + z9 + z10 + z11 + z12 + z13 + z14,
                e1 + z8 + z9 + z10 + z11 + z12 + z13 + z14 + z15,
                e2 + z16,
                e2 + z16 + z17,
                e2 + z16 + z17 + z18,
                e2 + z16 + z17 + z18 + z19,
                e2 + z16 + z17 + z18 + z19 + z20,
                e2 + z16 + z17 + z18 + z19 + z20 + z21,
                e2 + z16 + z17 + z18 + z19 + z20 + z21 + z22,
                e2 + z16 + z17 + z18 + z19 + z20 + z21 + z22 + z23,
                e3 + z24,
                e3 + z24 + z25,
                e3 + z24 + z25 + z26,
                e3 + z24 + z25 + z26 + z27,
                e3 + z24 + z25 + z26 + z27 + z28,
                e3 + z24 + z25 + z26 + z27 + z28 + z29,
                e3 + z24 + z25 + z26 + z27 + z28 + z29 + z30,
                e3 + z24 + z25 + z26 + z27 + z28 + z29 + z30 + z31,
                e4 + z32,
                e4 + z32 + z33,
                e4 + z32 + z33 + z34,
                e4 + z32 + z33 + z34 + z35,
                e4 + z32 + z33 + z34 + z35 + z36,
                e4 + z32 + z33 + z34 + z35 + z36 + z37,
                e4 + z32 + z33 + z34 + z35 + z36 + z37 + z38,
                e4 + z32 + z33 + z34 + z35 + z36 + z37 + z38 + z39,
                e5 + z40,
                e5 + z40 + z41,
                e5 + z40 + z41 + z42,
                e5 + z40 + z41 + z42 + z43,
                e5 + z40 + z41 + z42 + z43 + z44,
                e5 + z40 + z41 + z42 + z43 + z44 + z45,
                e5 + z40 + z41 + z42 + z43 + z44 + z45 + z46,
                e5 + z40 + z41 + z42 + z43 + z44 + z45 + z46 + z47,
                e6 + z48,
                e6 + z48 + z49,
                e6 + z48 + z49 + z50,
                e6 + z48 + z49 + z50 + z51,
                e6 + z48 + z49 + z50 + z51 + z52,
                e6 + z48 + z49 + z50 + z51 + z52 + z53,
                e6 + z48 + z49 + z50 + z51 + z52 + z53 + z54,
                e6 + z48 + z49 + z50 + z51 + z52 + z53 + z54 + z55,
                e7 + z56,
                e7 + z56 + z57,
                e7 + z56 + z57 + z58,
                e7 + z56 + z57 + z58 + z59,
                e7 + z56 + z57 + z58 + z59 + z60,
                e7 + z56 + z57 + z58 + z59 + z60 + z61,
                e7 + z56 + z57 + z58 + z59 + z60 + z61 + z62,
                e7 + z56 + z57 + z58 + z59 + z60 + z61 + z62 + z63,
                e8 + z64,
                e8 + z64 + z65,
                e8 + z64 + z65 + z66,
                e8 + z64 + z65 + z66 + z67,
                e8 + z64 + z65 + z66 + z67 + z68,
                e8 + z64 + z65 + z66 + z67 + z68 + z69,
                e8 + z64 + z65 + z66 + z67 + z68 + z69 + z70,
                e8 + z64 + z65 + z66 + z67 + z68 + z69 + z70 + z71,
                e9 + z72,
                e9 + z72 + z73,
                e9 + z72 + z73 + z74,
                e9 + z72 + z73 + z74 + z75,
                e9 + z72 + z73 + z74 + z75 + z76,
                e9 + z72 + z73 + z74 + z75 + z76 + z77,
                e9 + z72 + z73 + z74 + z75 + z76 + z77 + z78,
                e9 + z72 + z73 + z74 + z75 + z76 + z77 + z78 + z79,
                e10 + z80,
                e10 + z80 + z81,
                e10 + z80 + z81 + z82,
                e10 + z80 + z81 + z82 + z83,
                e10 + z80 + z81 + z82 + z83 + z84,
                e10 + z80 + z81 + z82 + z83 + z84 + z85,
                e10 + z80 + z81 + z82 + z83 + z84 + z85 + z86,
                e10 + z80 + z81 + z82 + z83 + z84 + z85 + z86 + z87,
                e11 + z88,
                e11 + z88 + z89,
                e11 + z88 + z89 + z90,
                e11 + z88 + z89 + z90 + z91,
                e11 + z88 + z89 + z90 + z91 + z92,
                e11 + z88 + z89 + z90 + z91 + z92 + z93,
                e11 + z88 + z89 + z90 + z91 + z92 + z93 + z94,
                e11 + z88 + z89 + z90 + z91 + z92 + z93 + z94 + z95,
                e12 + z96,
                e12 + z96 + z97,
                e12 + z96 + z97 + z98,
                e12 + z96 + z97 + z98 + z99,
                e12 + z96 + z97 + z98 + z99 + z100,
                e12 + z96 + z97 + z98 + z99 + z100 + z101,
                e12 + z96 + z97 + z98 + z99 + z100 + z101 + z102,
                e12 + z96 + z97 + z98 + z99 + z100 + z101 + z102 + z103,
                e13 + z104,
                e13 + z104 + z105,
                e13 + z104 + z105 + z106,
                e13 + z104 + z105 + z106 + z107,
                e13 + z104 + z105 + z106 + z107 + z108,
                e13 + z104 + z105 + z106 + z107 + z108 + z109,
                e13 + z104 + z105 + z106 + z107 + z108 + z109 + z110,
                e13 + z104 + z105 + z106 + z107 + z108 + z109 + z110 + z111,
                e14 + z112,
                e14 + z112 + z113,
                e14 + z112 + z113 + z114,
                e14 + z112 + z113 + z114 + z115,
                e14 + z112 + z113 + z114 + z115 + z116,
                e14 + z112 + z113 + z114 + z115 + z116 + z117,
                e14 + z112 + z113 + z114 + z115 + z116 + z117 + z118,
                e14 + z112 + z113 + z114 + z115 + z116 + z117 + z118 + z119,
                e15 + z120,
                e15 + z120 + z121,
                e15 + z120 + z121 + z122,
                e15 + z120 + z121 + z122 + z123,
                e15 + z120 + z121 + z122 + z123 + z124,
                e15 + z120 + z121 + z122 + z123 + z124 + z125,
                e15 + z120 + z121 + z122 + z123 + z124 + z125 + z126,
                e15 + z120 + z121 + z122 + z123 + z124 + z125 + z126 + z127
            ] AS c
            FROM befores OFFSET 0
        )
        SELECT c.url, c.probe, c.locations, c.probes, c.successes, c.successes::double precision / nullif(c.probes, 0),
               CASE WHEN c.c[128] > 0 THEN websentry_bucket_ms(width_bucket(greatest(1, ceil(0.50 * c.c[128]))::bigint - 1, c.c)) END,
               CASE WHEN c.c[128] > 0 THEN websentry_bucket_ms(width_bucket(greatest(1, ceil(0.95 * c.c[128]))::bigint - 1, c.c)) END,
               CASE WHEN c.c[128] > 0 THEN websentry_bucket_ms(width_bucket(greatest(1, ceil(0.99 * c.c[128]))::bigint - 1, c.c)) END,
               c.last_checked_at, c.inconclusive,
               m.coverage, m.measured_s, m.unknown_s, m.down_s, m.measured_uptime
        FROM cumulative c, websentry_window_measured(lo, hi, c.measured_us, c.down_us, c.locations) m
        WHERE with_latency
        UNION ALL
        -- Without the latency (site_uptime): no bucket is summed above (their sums are NULL
        -- constants when the query is planned) and the branch with the percentiles is pruned.
        SELECT c.url, c.probe, c.locations, c.probes, c.successes, c.successes::double precision / nullif(c.probes, 0),
               NULL, NULL, NULL, c.last_checked_at, c.inconclusive,
               m.coverage, m.measured_s, m.unknown_s, m.down_s, m.measured_uptime
        FROM merged c, websentry_window_measured(lo, hi, c.measured_us, c.down_us, c.locations) m
        WHERE NOT with_latency;
END $$;
COMMENT ON FUNCTION websentry_site_summary_all(timestamptz, timestamptz, boolean, boolean) IS
    'Helper of site_summary, site_summary_pooled, site_uptime and site_uptime_pooled: the answer for every site, per location or pooled, with the latency percentiles or without (NULL, and no histogram summed).';

-- The upkeep's turn at the kept answers (consumer/src/upkeep.rs, every few minutes): for each of
-- `spans` (whole hours; days are UTC days of 86,400 s here), the window asked during the current hour and during the next one, summed
-- up to two hours before its end (`hi`): the hours summed are over, and by `margin` after the later
-- of them the reports of it that were on their way are in. A kept answer that still counts is left
-- as it is, its snapshot moved to this turn's (no write noted since its own reaches into it, so
-- its sums are still the rollups' now, and the notes before can go); one voided by a late write
-- is summed anew (outcome 'summed again'); those of hours that are over are deleted.
-- Then the calendar months: each of the 13 before the current one (a year ending at any of their
-- ends), from the day the daily rollups are kept from, is summed whole once `margin` has passed
-- after its end (its cutoff is its end; span '1 mon'), kept and voided as the windows are; older
-- months are deleted. site_summary reads a window's whole months from them (websentry_kept_months).
-- Run it in a REPEATABLE READ transaction begun while the caller holds the kept-windows lock
-- (websentry_note_rollup_writes) exclusively: the transaction's snapshot then holds every rollup
-- write noted so far; the lock is released here, so batches wait only for the snapshot. Sums that
-- do not fit in an integer are not kept (outcome 'too large'): that window is read from the rollups.
CREATE OR REPLACE FUNCTION websentry_keep_windows(spans interval[], margin interval)
    RETURNS TABLE (span interval, hi timestamptz, outcome text, sums bigint, took_ms double precision)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off SET work_mem = '64MB'
                     SET TimeZone = 'UTC' AS $$
#variable_conflict use_column
DECLARE
    seen_id bigint;
    clock timestamptz := clock_timestamp();
    this_hour timestamptz := date_trunc('hour', clock AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    now_day date := (now() AT TIME ZONE 'UTC')::date;
    now_hour timestamptz := date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    c record;
    b record;
    new_id bigint;
    voided boolean;
    started timestamptz;
    kept_id bigint;
    -- The months kept: the 13 before the current one, from the first day the daily rollups keep.
    first_month timestamptz := date_trunc('month', clock) - interval '13 months';
    daily_from timestamptz := coalesce((SELECT r.kept_from FROM rollup_retention r WHERE r.level = 'day'), '-infinity');
    sums_of_buckets text := (SELECT string_agg(format('sum(b%s)::integer', k), ', ' ORDER BY k) FROM generate_series(0, 127) k);
BEGIN
    IF current_setting('transaction_isolation') <> 'repeatable read' THEN
        RAISE EXCEPTION 'websentry_keep_windows runs in a REPEATABLE READ transaction';
    END IF;
    IF NOT pg_advisory_unlock(8603390910923699317) THEN
        RAISE EXCEPTION 'websentry_keep_windows needs the kept-windows lock held exclusively before its transaction began';
    END IF;
    seen_id := coalesce((SELECT max(w.id) FROM rollup_writes w), 0);
    -- Windows asked in hours that are over; months no longer kept (their cutoff is their end).
    DELETE FROM rollup_windows k WHERE (k.hi <= this_hour AND k.cutoff < k.hi) OR (k.cutoff = k.hi AND k.lo < first_month);
    -- What may be kept: each fixed window as asked during the hour before h (for the hours ending
    -- at the next two h), summed up to two hours before h; then each closed month as a window
    -- asked over [its start, its end), summed up to its end. Months whose first day the daily
    -- rollups no longer keep are not summed (expiring that day deleted them).
    FOR c IN
        SELECT w.span, w.hi, w.ask_from, w.ask_to, w.cut FROM (
            SELECT s AS span, h AS hi, h - interval '1 microsecond' - s AS ask_from, h - interval '1 microsecond' AS ask_to,
                   h - interval '2 hours' AS cut, i AS i, j AS j
            FROM unnest(spans) WITH ORDINALITY AS u(s, i),
                 unnest(ARRAY[this_hour + interval '1 hour', this_hour + interval '2 hours']) WITH ORDINALITY AS v(h, j)
            UNION ALL
            SELECT interval '1 month', g + interval '1 month', g, g + interval '1 month', g + interval '1 month',
                   cardinality(spans) + 1, row_number() OVER (ORDER BY g)
            FROM generate_series(greatest(first_month, date_trunc('month', daily_from)),
                                 date_trunc('month', clock) - interval '1 month', interval '1 month') g
            WHERE g >= daily_from) w
        ORDER BY w.i, w.j
    LOOP
        span := c.span;
        hi := c.hi;
        sums := NULL;
        took_ms := NULL;
        IF c.cut > clock - margin THEN
            outcome := 'not yet';
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT k.id INTO kept_id FROM websentry_kept_window(c.ask_from, c.ask_to) k;
        IF FOUND THEN
            UPDATE rollup_windows k SET seen = seen_id WHERE k.id = kept_id;
            outcome := 'kept';
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT * INTO b FROM websentry_summary_bounds(c.ask_from, c.ask_to);
        -- Kept before for these bounds but no longer counting: voided by a late write.
        DELETE FROM rollup_windows k WHERE k.lo = b.lo AND k.hi = b.hi AND k.day_lo = b.day_lo AND k.day_hi = b.day_hi;
        voided := FOUND;
        started := clock_timestamp();
        BEGIN
            INSERT INTO rollup_windows (lo, hi, day_lo, day_hi, cutoff, seen, built_ms)
                VALUES (b.lo, b.hi, b.day_lo, b.day_hi, c.cut, seen_id, 0) RETURNING id INTO new_id;
            -- Its days up to the cutoff's, then its edge hours up to the cutoff.
            EXECUTE format(
                'INSERT INTO rollup_window_sums
                 SELECT $1, url, probe, sum(probes)::integer, sum(successes)::integer, max(last_checked_at),
                        sum(inconclusive)::integer, sum(measured_us), sum(down_us), %s
                 FROM websentry_window_parts($2, $3, $3, $3, $4, $5, $6, $7, $8, $9, NULL)
                 GROUP BY url, probe', sums_of_buckets)
                USING new_id, (b.day_lo AT TIME ZONE 'UTC')::date,
                      least((b.day_hi AT TIME ZONE 'UTC')::date, websentry_first_day_after(c.cut)),
                      b.lo, least(b.day_lo, c.cut), b.day_hi, least(b.hi, c.cut), now_day, now_hour;
            GET DIAGNOSTICS sums = ROW_COUNT;
            took_ms := extract(epoch FROM clock_timestamp() - started) * 1e3;
            UPDATE rollup_windows k SET built_ms = took_ms WHERE k.id = new_id;
            outcome := CASE WHEN voided THEN 'summed again' ELSE 'summed' END;
        EXCEPTION WHEN numeric_value_out_of_range THEN
            outcome := 'too large';
        END;
        RETURN NEXT;
    END LOOP;
    -- Notes every kept answer's snapshot holds are of no more use.
    DELETE FROM rollup_writes w WHERE w.id <= (SELECT coalesce(min(k.seen), seen_id) FROM rollup_windows k);
END $$;
COMMENT ON FUNCTION websentry_keep_windows(interval[], interval) IS
    'Upkeep: sums ahead the fixed windows'' answers (rollup_windows, rollup_window_sums) for the current and the next hour; in a REPEATABLE READ transaction begun while holding the kept-windows lock.';

-- The interface: a SQL function, so that its optional parameter can be named like its first column
-- (PL/pgSQL refuses an input and an output parameter of one name). Without JIT: the all-sites query
-- holds about a thousand expressions (sums of 128 buckets, their cumulative array), which LLVM
-- compiles in longer than they run: with the server's default jit = on, 10,000 sites took 1.04 s
-- over 24 hours and 6.7 s over 90 days, against 0.78 s and 2.0 s without (archive bench, part 4).
CREATE OR REPLACE FUNCTION site_summary(window_start timestamptz, window_end timestamptz, url text DEFAULT NULL)
    RETURNS TABLE (url text, probe text, probes bigint, successes bigint, uptime double precision,
                   p50_ms double precision, p95_ms double precision, p99_ms double precision,
                   last_checked_at timestamptz, inconclusive bigint, coverage double precision,
                   measured_s double precision, unknown_s double precision, down_s double precision,
                   measured_uptime double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET work_mem = '64MB' SET jit = off AS $$
    SELECT url, probe, probes, successes, uptime, p50_ms, p95_ms, p99_ms, last_checked_at, inconclusive, coverage,
           measured_s, unknown_s, down_s, measured_uptime
    FROM websentry_site_summary_one(window_start, window_end, site_summary.url, false) WHERE site_summary.url IS NOT NULL
    UNION ALL
    SELECT url, probe, probes, successes, uptime, p50_ms, p95_ms, p99_ms, last_checked_at, inconclusive, coverage,
           measured_s, unknown_s, down_s, measured_uptime
    FROM websentry_site_summary_all(window_start, window_end, false, true) WHERE site_summary.url IS NULL
    ORDER BY 1, 2
$$;
COMMENT ON FUNCTION site_summary(timestamptz, timestamptz, text) IS
    'Uptime and latency of each (url, probe) over [window_start, window_end), or of one url, from the rollups, taken in whole UTC hours (start rounded down, end up), or whole UTC days at an edge whose day is older than the hourly rollups kept (see rollup_horizons). By probes: uptime = successes / probes (a success is a report whose error is null), inconclusive = failures while the round''s canaries failed too. By time, from reports that state their cadence (each stands for interval_s from its checked_at): measured_s, down_s, unknown_s = the window (up to now) less the measured time, coverage = measured / window, measured_uptime = 1 - down / measured; NULLs when no report in the window stated a cadence. p50_ms, p95_ms, p99_ms are of successful probes, within 4.88 % (bucket midpoints); last_checked_at is the newest report. Sites without a row in the window are absent; an empty or reversed window, or a NULL bound, gives no row; -infinity and infinity are open ends, and a bound from year 10000 on is infinity. Example: SELECT url, coverage, measured_uptime FROM site_summary(now() - interval ''7 days'', now());';

-- site_summary_pooled: the same answers per url, all its locations together. Pooling counts each
-- location's time once (location-seconds), over the locations with a row in the window:
--   probes, successes, inconclusive: the locations' sums; uptime = successes / probes.
--   measured_s, down_s: the locations' sums, each location's time capped at each bucket first.
--   unknown_s = locations × the window's passed part − measured_s: time a location with a row in the
--     window did not measure is unknown, even while another location measured it.
--   coverage = measured_s / (locations × the window's passed part): the mean of the locations'
--     coverage. measured_uptime = 1 − down_s / measured_s: the locations' measured uptimes weighted
--     by their measured time, so a site down from one of two locations half the time is 75 % up.
--   p50_ms, p95_ms, p99_ms: of every location's successful probes, from the merged histograms.
-- With one location, its row equals site_summary's. Without JIT, as site_summary.
CREATE OR REPLACE FUNCTION site_summary_pooled(window_start timestamptz, window_end timestamptz, url text DEFAULT NULL)
    RETURNS TABLE (url text, locations integer, probes bigint, successes bigint, uptime double precision,
                   p50_ms double precision, p95_ms double precision, p99_ms double precision,
                   last_checked_at timestamptz, inconclusive bigint, coverage double precision,
                   measured_s double precision, unknown_s double precision, down_s double precision,
                   measured_uptime double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET work_mem = '64MB' SET jit = off AS $$
    SELECT url, locations, probes, successes, uptime, p50_ms, p95_ms, p99_ms, last_checked_at, inconclusive, coverage,
           measured_s, unknown_s, down_s, measured_uptime
    FROM websentry_site_summary_one(window_start, window_end, site_summary_pooled.url, true)
    WHERE site_summary_pooled.url IS NOT NULL
    UNION ALL
    SELECT url, locations, probes, successes, uptime, p50_ms, p95_ms, p99_ms, last_checked_at, inconclusive, coverage,
           measured_s, unknown_s, down_s, measured_uptime
    FROM websentry_site_summary_all(window_start, window_end, true, true) WHERE site_summary_pooled.url IS NULL
    ORDER BY 1
$$;
COMMENT ON FUNCTION site_summary_pooled(timestamptz, timestamptz, text) IS
    'site_summary per url, all its locations (probes) together, over the locations with a row in [window_start, window_end) (locations = how many). Each location''s time counts once: probes, successes, inconclusive, measured_s and down_s are the locations'' sums; unknown_s = locations x the window''s passed part - measured_s; coverage = measured_s / (locations x the passed part), the mean of the locations'' coverage; measured_uptime = 1 - down_s / measured_s, the locations'' uptimes weighted by their measured time; percentiles from the merged histograms. With one location, equal to site_summary''s row. Example: SELECT url, locations, coverage, measured_uptime FROM site_summary_pooled(now() - interval ''30 days'', now());';

-- site_uptime, site_uptime_pooled: site_summary's and site_summary_pooled's answers without the
-- latency percentiles, for readers that need only uptime and coverage (the status page's per-site
-- metrics). For all sites, no histogram bucket is summed and no percentile walked: the fixed windows
-- of 10,000 sites cost about a fifth of site_summary's (docs/benchmarks.md). The figures are
-- site_summary's own, from the same rows (a test compares them). One url is answered by
-- site_summary's query for one site. Without JIT, as site_summary.
CREATE OR REPLACE FUNCTION site_uptime(window_start timestamptz, window_end timestamptz, url text DEFAULT NULL)
    RETURNS TABLE (url text, probe text, probes bigint, successes bigint, uptime double precision,
                   last_checked_at timestamptz, inconclusive bigint, coverage double precision,
                   measured_s double precision, unknown_s double precision, down_s double precision,
                   measured_uptime double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET work_mem = '64MB' SET jit = off AS $$
    SELECT url, probe, probes, successes, uptime, last_checked_at, inconclusive, coverage,
           measured_s, unknown_s, down_s, measured_uptime
    FROM websentry_site_summary_one(window_start, window_end, site_uptime.url, false) WHERE site_uptime.url IS NOT NULL
    UNION ALL
    SELECT url, probe, probes, successes, uptime, last_checked_at, inconclusive, coverage,
           measured_s, unknown_s, down_s, measured_uptime
    FROM websentry_site_summary_all(window_start, window_end, false, false) WHERE site_uptime.url IS NULL
    ORDER BY 1, 2
$$;
COMMENT ON FUNCTION site_uptime(timestamptz, timestamptz, text) IS
    'site_summary without p50_ms, p95_ms and p99_ms: uptime by probes and by time, coverage and the last report of each (url, probe) over [window_start, window_end), or of one url, with the same window rules and the same figures as site_summary, at a fraction of its cost for all sites (no latency histogram is summed). Example: SELECT url, probe, coverage, measured_uptime FROM site_uptime(now() - interval ''24 hours'', now());';

CREATE OR REPLACE FUNCTION site_uptime_pooled(window_start timestamptz, window_end timestamptz, url text DEFAULT NULL)
    RETURNS TABLE (url text, locations integer, probes bigint, successes bigint, uptime double precision,
                   last_checked_at timestamptz, inconclusive bigint, coverage double precision,
                   measured_s double precision, unknown_s double precision, down_s double precision,
                   measured_uptime double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET work_mem = '64MB' SET jit = off AS $$
    SELECT url, locations, probes, successes, uptime, last_checked_at, inconclusive, coverage,
           measured_s, unknown_s, down_s, measured_uptime
    FROM websentry_site_summary_one(window_start, window_end, site_uptime_pooled.url, true)
    WHERE site_uptime_pooled.url IS NOT NULL
    UNION ALL
    SELECT url, locations, probes, successes, uptime, last_checked_at, inconclusive, coverage,
           measured_s, unknown_s, down_s, measured_uptime
    FROM websentry_site_summary_all(window_start, window_end, true, false) WHERE site_uptime_pooled.url IS NULL
    ORDER BY 1
$$;
COMMENT ON FUNCTION site_uptime_pooled(timestamptz, timestamptz, text) IS
    'site_summary_pooled without p50_ms, p95_ms and p99_ms: each url''s locations together, with the same figures as site_summary_pooled, at a fraction of its cost for all sites. Example: SELECT url, locations, coverage, measured_uptime FROM site_uptime_pooled(now() - interval ''30 days'', now());';

-- ------------------------------------------------------------------------------------------------
-- site_timeline: the same answers per hour or per UTC day over a window, bucket by bucket, for the
-- series a chart or a 90-day bar needs. A bucket that no row reaches (nobody measured, nothing
-- probed) is there too, with no probe and all of its time unknown; buckets that have not started are
-- left out. Without percentiles: those cost a histogram walk per bucket, too much for a year of
-- thousands of sites (site_summary gives them per window).

-- The window in whole buckets of `step` ('hour' or 'day', UTC): [lo, hi), and the bucket's width.
-- Hours start at the hourly horizon (websentry_hourly_from): the hours before it are gone. Refuses
-- another step, and a series of more than 10,000 buckets per site (hours: 416 days).
CREATE OR REPLACE FUNCTION websentry_timeline_bounds(window_start timestamptz, window_end timestamptz, step text,
                                                     OUT lo timestamptz, OUT hi timestamptz, OUT width interval)
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    buckets double precision;
BEGIN
    IF step IS DISTINCT FROM 'hour' AND step IS DISTINCT FROM 'day' THEN
        RAISE EXCEPTION 'site_timeline: step must be ''hour'' or ''day'', not %', coalesce(quote_literal(step), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT b.lo, b.hi INTO lo, hi FROM websentry_summary_bounds(window_start, window_end) b;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    width := CASE step WHEN 'hour' THEN interval '1 hour' ELSE interval '1 day' END;
    IF step = 'hour' THEN
        -- Hours before the hourly horizon are gone, not unmeasured: the series starts at it.
        lo := greatest(lo, websentry_hourly_from());
        IF lo >= hi THEN
            hi := lo;
        END IF;
    END IF;
    IF step = 'day' THEN
        lo := date_trunc('day', lo AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
        hi := date_trunc('day', (hi AT TIME ZONE 'UTC') + interval '1 day' - interval '1 microsecond') AT TIME ZONE 'UTC';
    END IF;
    buckets := extract(epoch FROM hi - lo) / extract(epoch FROM width);
    IF buckets > 10000 THEN
        RAISE EXCEPTION 'site_timeline: % buckets of one %, at most 10000 per site: a shorter window, or step ''day''',
            buckets, step USING ERRCODE = 'program_limit_exceeded';
    END IF;
END $$;
COMMENT ON FUNCTION websentry_timeline_bounds(timestamptz, timestamptz, text) IS
    'Helper of site_timeline: the window in whole buckets of step (hours from the hourly horizon on), and the width of one; refuses a step other than hour or day, and more than 10,000 buckets.';

CREATE OR REPLACE FUNCTION site_timeline(window_start timestamptz, window_end timestamptz, step text DEFAULT 'hour',
                                         url text DEFAULT NULL)
    RETURNS TABLE (url text, probe text, bucket_start timestamptz, bucket_end timestamptz, probes bigint,
                   successes bigint, uptime double precision, last_checked_at timestamptz, inconclusive bigint,
                   coverage double precision, measured_s double precision, unknown_s double precision,
                   down_s double precision, measured_uptime double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET work_mem = '64MB' AS $$
    WITH bounds AS (
        SELECT * FROM websentry_timeline_bounds(window_start, window_end, step)
    ), found AS (
        SELECT h.url, h.probe, h.hour AS at, h.probes, h.successes, h.last_checked_at, h.inconclusive,
               h.covered_us, h.down_us
        FROM rollup_hourly h, bounds b
        WHERE step = 'hour' AND h.hour >= b.lo AND h.hour < b.hi
          AND (site_timeline.url IS NULL OR h.url = site_timeline.url)
        UNION ALL
        SELECT d.url, d.probe, d.day::timestamp AT TIME ZONE 'UTC', d.probes, d.successes, d.last_checked_at,
               d.inconclusive, d.covered_us, d.down_us
        FROM rollup_daily d, bounds b
        WHERE step = 'day' AND d.day >= (b.lo AT TIME ZONE 'UTC')::date AND d.day < (b.hi AT TIME ZONE 'UTC')::date
          AND (site_timeline.url IS NULL OR d.url = site_timeline.url)
    ), sites AS (
        SELECT DISTINCT f.url, f.probe FROM found f
    ), series AS (
        -- UTC wall-clock steps, whatever the session's time zone.
        SELECT s.url, s.probe, g.at AT TIME ZONE 'UTC' AS at, b.width
        FROM sites s, bounds b,
             generate_series(b.lo AT TIME ZONE 'UTC', (b.hi AT TIME ZONE 'UTC') - b.width, b.width) AS g(at)
        WHERE g.at AT TIME ZONE 'UTC' < now()
    ), measured AS (
        -- A bucket no report reached is measured for none of its time.
        SELECT x.url, x.probe, x.at, x.width, f.probes, f.successes, f.last_checked_at, f.inconclusive, t.span,
               CASE WHEN f.url IS NULL THEN 0 ELSE websentry_measured_us(f.covered_us, t.span) END AS measured_us,
               CASE WHEN f.url IS NULL THEN 0 ELSE websentry_down_us(f.covered_us, f.down_us, t.span) END AS down_us
        FROM series x
        LEFT JOIN found f ON (f.url, f.probe, f.at) = (x.url, x.probe, x.at)
        CROSS JOIN LATERAL (SELECT websentry_span_us(x.at, x.width) AS span) t
    )
    -- websentry_window_measured of each bucket, written out: a bucket's passed part is its span, and
    -- a call per bucket (a function with OUT parameters is never inlined) cost two thirds of the time
    -- of 90 days of 1,000 sites. A test compares the two.
    SELECT m.url, m.probe, m.at, m.at + m.width, coalesce(m.probes, 0)::bigint, coalesce(m.successes, 0)::bigint,
           m.successes::double precision / nullif(m.probes, 0), m.last_checked_at, coalesce(m.inconclusive, 0)::bigint,
           CASE WHEN m.span > 0 THEN m.measured_us / m.span END, m.measured_us / 1e6, (m.span - m.measured_us) / 1e6,
           CASE WHEN m.measured_us IS NOT NULL THEN coalesce(m.down_us, 0) / 1e6 END,
           CASE WHEN m.measured_us > 0 THEN 1 - coalesce(m.down_us, 0) / m.measured_us END
    FROM measured m
    ORDER BY 1, 2, 3
$$;
COMMENT ON FUNCTION site_timeline(timestamptz, timestamptz, text, text) IS
    'site_summary per bucket, without percentiles: for each (url, probe), or one url, with a row in [window_start, window_end), one row per hour (step ''hour'') or UTC day (step ''day'') of the window that has started, with bucket_start and bucket_end; hours start at the hourly horizon (rollup_horizons), days before it are answered by step ''day''. A bucket no report reached has 0 probes and coverage 0 (all of it unknown); a bucket whose reports stated no cadence has coverage NULL. At most 10,000 buckets per site. Example, a 90-day bar: SELECT bucket_start, coverage, measured_uptime FROM site_timeline(now() - interval ''90 days'', now(), ''day'', ''https://example.com/'');';

-- site_timeline_pooled: site_timeline per url and bucket, all its locations together, pooled as
-- site_summary_pooled pools a window: over the locations with a row in the window (each has a row
-- in every bucket of site_timeline, coverage 0 where it measured nothing), each location's time
-- counted once. Summing a site's buckets gives site_summary_pooled over the same whole buckets.
CREATE OR REPLACE FUNCTION site_timeline_pooled(window_start timestamptz, window_end timestamptz,
                                                step text DEFAULT 'hour', url text DEFAULT NULL)
    RETURNS TABLE (url text, locations integer, bucket_start timestamptz, bucket_end timestamptz, probes bigint,
                   successes bigint, uptime double precision, last_checked_at timestamptz, inconclusive bigint,
                   coverage double precision, measured_s double precision, unknown_s double precision,
                   down_s double precision, measured_uptime double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET work_mem = '64MB' AS $$
    SELECT p.url, p.locations, p.bucket_start, p.bucket_end, p.probes, p.successes,
           p.successes::double precision / nullif(p.probes, 0), p.last_checked_at, p.inconclusive,
           CASE WHEN p.passed_s > 0 THEN p.measured_s / p.passed_s END, p.measured_s, p.passed_s - p.measured_s,
           p.down_s, CASE WHEN p.measured_s > 0 THEN 1 - coalesce(p.down_s, 0) / p.measured_s END
    FROM (SELECT t.url, count(*)::integer AS locations, t.bucket_start, t.bucket_end, sum(t.probes)::bigint AS probes,
                 sum(t.successes)::bigint AS successes, max(t.last_checked_at) AS last_checked_at,
                 sum(t.inconclusive)::bigint AS inconclusive, sum(t.measured_s) AS measured_s, sum(t.down_s) AS down_s,
                 count(*) * websentry_span_us(t.bucket_start, t.bucket_end - t.bucket_start) / 1e6 AS passed_s
          FROM site_timeline(window_start, window_end, step, site_timeline_pooled.url) t
          GROUP BY t.url, t.bucket_start, t.bucket_end) p
    ORDER BY 1, 3
$$;
COMMENT ON FUNCTION site_timeline_pooled(timestamptz, timestamptz, text, text) IS
    'site_timeline per url and bucket, all its locations together, pooled as site_summary_pooled pools a window: locations = the locations with a row in [window_start, window_end), each counting once in every bucket (coverage 0 where it measured nothing); probes, successes, measured_s and down_s are their sums, unknown_s = locations x the bucket''s passed part - measured_s, coverage the mean of theirs, measured_uptime weighted by measured time. At most 10,000 buckets per site. Example: SELECT bucket_start, locations, coverage, measured_uptime FROM site_timeline_pooled(now() - interval ''7 days'', now(), ''day'', ''https://example.com/'');';

-- site_days: the UTC days of a window per (url, probe) in one row, as arrays over the days that have
-- a rollup row: what an overview of every site's 90 days needs, at a fraction of site_timeline's
-- cost (no series of every day joined to the rows; 1,000 sites x 90 days in one read of the
-- daily rollup). A day absent from measured_days had no report: nothing of it was measured, as
-- site_timeline says with a row of coverage 0.
CREATE OR REPLACE FUNCTION websentry_site_days(lo date, hi date, site text)
    RETURNS TABLE (url text, probe text, measured_days integer[], probes bigint[], successes bigint[],
                   coverage double precision[], measured_s double precision[], unknown_s double precision[],
                   down_s double precision[], measured_uptime double precision[])
    -- Site by site: the (url, probe) pairs are walked in the primary key's order, one index probe
    -- each (a recursive "loose index scan"), and each pair's days are read from the primary key,
    -- which holds the columns read (migration 15; migration 10's rollup_daily_days before), in
    -- day order and without the table, into its arrays. One
    -- read of every site's days together, as before, took 70 ms for 1,000 sites x 91 days but
    -- 4.4 s for 10,000: the planner then chose the whole rows and a sort that spilled to disk; site
    -- by site it is 1.7 s (and 1,000 sites as before). No parallel workers: each probe is a few
    -- index pages.
    LANGUAGE plpgsql STABLE SET max_parallel_workers_per_gather = 0 SET plan_cache_mode = force_custom_plan AS $f$
#variable_conflict use_column
DECLARE
    -- Days before today are over: their span is the whole day, without working it out per row.
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    -- PL/pgSQL plans this with the window's days and the site known (plan_cache_mode: for each
    -- call), so that `site IS NULL OR …` folds away.
    RETURN QUERY
    WITH RECURSIVE pairs AS (
        (SELECT d.url, d.probe FROM rollup_daily d WHERE site IS NULL OR d.url = site ORDER BY d.url, d.probe LIMIT 1)
        UNION ALL
        SELECT n.url, n.probe
        FROM pairs p,
             LATERAL (SELECT d.url, d.probe FROM rollup_daily d
                      WHERE (d.url, d.probe) > (p.url, p.probe) AND (site IS NULL OR d.url = site)
                      ORDER BY d.url, d.probe LIMIT 1) n
    )
    SELECT p.url, p.probe, a.measured_days, a.probes, a.successes, a.coverage, a.measured_s, a.unknown_s,
           a.down_s, a.measured_uptime
    FROM pairs p,
         -- One row per pair with a day in the window (an aggregate over no row still gives one).
         LATERAL (SELECT array_agg(f.i) AS measured_days, array_agg(f.probes) AS probes,
                         array_agg(f.successes) AS successes,
                         array_agg(CASE WHEN f.span > 0 THEN f.measured_us / f.span END) AS coverage,
                         array_agg(f.measured_us / 1e6) AS measured_s,
                         array_agg((f.span - f.measured_us) / 1e6) AS unknown_s,
                         array_agg(CASE WHEN f.measured_us IS NOT NULL THEN coalesce(f.down_us, 0) / 1e6 END) AS down_s,
                         array_agg(CASE WHEN f.measured_us > 0 THEN 1 - coalesce(f.down_us, 0) / f.measured_us END)
                             AS measured_uptime
                  -- array_agg keeps the order of its sorted input.
                  FROM (SELECT d.day - lo AS i, d.probes::bigint AS probes, d.successes::bigint AS successes,
                               t.span, websentry_measured_us(d.covered_us, t.span) AS measured_us,
                               websentry_down_us(d.covered_us, d.down_us, t.span) AS down_us
                        FROM rollup_daily d,
                             LATERAL (SELECT CASE WHEN d.day < today THEN 86400e6::double precision
                                             ELSE websentry_span_us(d.day::timestamp AT TIME ZONE 'UTC', interval '1 day') END
                                         AS span) t
                        WHERE d.url = p.url AND d.probe = p.probe AND d.day >= lo AND d.day < hi
                          AND d.day <= today
                        ORDER BY d.day) f
                  HAVING count(*) > 0) a
    ORDER BY 1, 2;
END $f$;
COMMENT ON FUNCTION websentry_site_days(date, date, text) IS
    'Helper of site_days: the days [lo, hi) of each (url, probe), or of one url, as arrays over the days with a rollup row.';

CREATE OR REPLACE FUNCTION site_days(window_start timestamptz, window_end timestamptz, url text DEFAULT NULL)
    RETURNS TABLE (url text, probe text, first_day date, days integer, measured_days integer[], probes bigint[],
                   successes bigint[], coverage double precision[], measured_s double precision[],
                   unknown_s double precision[], down_s double precision[], measured_uptime double precision[])
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET work_mem = '64MB' AS $$
    SELECT s.url, s.probe, w.first_day, w.days, s.measured_days, s.probes, s.successes, s.coverage, s.measured_s,
           s.unknown_s, s.down_s, s.measured_uptime
    FROM websentry_timeline_bounds(window_start, window_end, 'day') b,
         LATERAL (SELECT (b.lo AT TIME ZONE 'UTC')::date AS first_day,
                         greatest(0, least((b.hi AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date + 1)
                                         - (b.lo AT TIME ZONE 'UTC')::date) AS days) w,
         LATERAL websentry_site_days(w.first_day, w.first_day + w.days, site_days.url) s
$$;
COMMENT ON FUNCTION site_days(timestamptz, timestamptz, text) IS
    'The UTC days of [window_start, window_end) that have started, for each (url, probe) with a row in it, or one url, in one row: first_day, days (how many have started) and, over the days with a rollup row, arrays in day order: measured_days (each one''s offset from first_day, 0 first), probes, successes, coverage, measured_s, unknown_s, down_s and measured_uptime, as site_timeline gives them per day. A day absent from measured_days had no report: coverage 0, all of its passed time unknown. At most 10,000 days. Example, days measured less than half: SELECT url, first_day + d AS day FROM site_days(now() - interval ''90 days'', now()), unnest(measured_days, coverage) AS x(d, c) WHERE c < 0.5;';

-- ------------------------------------------------------------------------------------------------
-- One site in detail: latency per bucket, its outages, its last reports.

-- p50, p95 and p99 of one site's successful probes per hour or UTC day over a window, for a
-- latency chart; buckets without a success are left out. One site at a time: each bucket walks its
-- histogram (at most 10,000 buckets, as site_timeline).
-- Refuses a missing url, where one site at a time is the rule.
CREATE OR REPLACE FUNCTION websentry_required_url(url text, caller text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF url IS NULL THEN
        RAISE EXCEPTION '%: url is required (one site at a time)', caller USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN url;
END $$;
COMMENT ON FUNCTION websentry_required_url(text, text) IS
    'Helper: url, or an error naming caller when it is NULL.';

CREATE OR REPLACE FUNCTION site_latency(window_start timestamptz, window_end timestamptz, step text, url text)
    RETURNS TABLE (url text, probe text, bucket_start timestamptz, bucket_end timestamptz, successes bigint,
                   p50_ms double precision, p95_ms double precision, p99_ms double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH bounds AS (
        SELECT b.*, websentry_required_url(site_latency.url, 'site_latency') AS site
        FROM websentry_timeline_bounds(window_start, window_end, step) b
    ), found AS (
        SELECT h.url, h.probe, h.hour AS at, h.successes, ARRAY[
               h.b0, h.b1, h.b2, h.b3, h.b4, h.b5, h.b6, h.b7,
               h.b8, h.b9, h.b10, h.b11, h.b12, h.b13, h.b14, h.b15,
               h.b16, h.b17, h.b18, h.b19, h.b20, h.b21, h.b22, h.b23,
               h.b24, h.b25, h.b26, h.b27, h.b28, h.b29, h.b30, h.b31,
               h.b32, h.b33, h.b34, h.b35, h.b36, h.b37, h.b38, h.b39,
               h.b40, h.b41, h.b42, h.b43, h.b44, h.b45, h.b46, h.b47,
               h.b48, h.b49, h.b50, h.b51, h.b52, h.b53, h.b54, h.b55,
               h.b56, h.b57, h.b58, h.b59, h.b60, h.b61, h.b62, h.b63,
               h.b64, h.b65, h.b66, h.b67, h.b68, h.b69, h.b70, h.b71,
               h.b72, h.b73, h.b74, h.b75, h.b76, h.b77, h.b78, h.b79,
               h.b80, h.b81, h.b82, h.b83, h.b84, h.b85, h.b86, h.b87,
               h.b88, h.b89, h.b90, h.b91, h.b92, h.b93, h.b94, h.b95,
               h.b96, h.b97, h.b98, h.b99, h.b100, h.b101, h.b102, h.b103,
               h.b104, h.b105, h.b106, h.b107, h.b108, h.b109, h.b110, h.b111,
               h.b112, h.b113, h.b114, h.b115, h.b116, h.b117, h.b118, h.b119,
               h.b120, h.b121, h.b122, h.b123, h.b124, h.b125, h.b126, h.b127
               ]::bigint[] AS histogram
        FROM rollup_hourly h, bounds b
        WHERE step = 'hour' AND h.url = b.site AND h.hour >= b.lo AND h.hour < b.hi
        UNION ALL
        SELECT d.url, d.probe, d.day::timestamp AT TIME ZONE 'UTC', d.successes, ARRAY[
               d.b0, d.b1, d.b2, d.b3, d.b4, d.b5, d.b6, d.b7,
               d.b8, d.b9, d.b10, d.b11, d.b12, d.b13, d.b14, d.b15,
               d.b16, d.b17, d.b18, d.b19, d.b20, d.b21, d.b22, d.b23,
               d.b24, d.b25, d.b26, d.b27, d.b28, d.b29, d.b30, d.b31,
               d.b32, d.b33, d.b34, d.b35, d.b36, d.b37, d.b38, d.b39,
               d.b40, d.b41, d.b42, d.b43, d.b44, d.b45, d.b46, d.b47,
               d.b48, d.b49, d.b50, d.b51, d.b52, d.b53, d.b54, d.b55,
               d.b56, d.b57, d.b58, d.b59, d.b60, d.b61, d.b62, d.b63,
               d.b64, d.b65, d.b66, d.b67, d.b68, d.b69, d.b70, d.b71,
               d.b72, d.b73, d.b74, d.b75, d.b76, d.b77, d.b78, d.b79,
               d.b80, d.b81, d.b82, d.b83, d.b84, d.b85, d.b86, d.b87,
               d.b88, d.b89, d.b90, d.b91, d.b92, d.b93, d.b94, d.b95,
               d.b96, d.b97, d.b98, d.b99, d.b100, d.b101, d.b102, d.b103,
               d.b104, d.b105, d.b106, d.b107, d.b108, d.b109, d.b110, d.b111,
               d.b112, d.b113, d.b114, d.b115, d.b116, d.b117, d.b118, d.b119,
               d.b120, d.b121, d.b122, d.b123, d.b124, d.b125, d.b126, d.b127
               ]::bigint[]
        FROM rollup_daily d, bounds b
        WHERE step = 'day' AND d.url = b.site
          AND d.day >= (b.lo AT TIME ZONE 'UTC')::date AND d.day < (b.hi AT TIME ZONE 'UTC')::date
    )
    SELECT f.url, f.probe, f.at, f.at + b.width, f.successes::bigint, q.p[1], q.p[2], q.p[3]
    FROM found f, bounds b, LATERAL (SELECT websentry_percentiles(f.histogram) AS p) q
    WHERE f.successes > 0
    ORDER BY 2, 3
$$;
COMMENT ON FUNCTION site_latency(timestamptz, timestamptz, text, text) IS
    'p50_ms, p95_ms and p99_ms of one url''s successful probes per hour (step ''hour'') or UTC day (step ''day'') of [window_start, window_end), per probe, from the rollups (within 4.88 %); buckets without a success are left out, hours start at the hourly horizon (rollup_horizons). url is required; at most 10,000 buckets. Example: SELECT bucket_start, p50_ms, p95_ms FROM site_latency(now() - interval ''7 days'', now(), ''hour'', ''https://example.com/'');';

-- Outages: runs of failed reports of one site, per probe, from the raw reports (so within the raw
-- retention). A run starts with a failed report and ends with the next successful one;
-- inconclusive failures are neither up nor down and neither start nor end a run. An outage still
-- going has no end; one that began before the window starts at its first failed report in it.
CREATE OR REPLACE FUNCTION site_outages(window_start timestamptz, window_end timestamptz, url text)
    RETURNS TABLE (url text, probe text, started_at timestamptz, ended_at timestamptz,
                   duration_s double precision, failures bigint, error_kinds text[])
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH seen AS (
        SELECT r.probe, r.checked_at, r.error_kind, r.error_kind IS NOT NULL AS down
        FROM reports r
        WHERE r.url = site_outages.url AND r.checked_at >= window_start AND r.checked_at < window_end
          AND NOT r.inconclusive
    ), runs AS (
        -- Each success opens a new run: the failures after it share its number.
        SELECT s.*, count(*) FILTER (WHERE NOT s.down) OVER (PARTITION BY s.probe ORDER BY s.checked_at) AS run
        FROM seen s
    ), outages AS (
        SELECT probe, run, min(checked_at) AS started_at, count(*) AS failures,
               array_agg(DISTINCT error_kind ORDER BY error_kind) AS error_kinds
        FROM runs WHERE down GROUP BY probe, run
    )
    SELECT site_outages.url, o.probe, o.started_at, e.ended_at,
           extract(epoch FROM coalesce(e.ended_at, now()) - o.started_at)::double precision,
           o.failures, o.error_kinds
    FROM outages o
    LEFT JOIN LATERAL (SELECT min(n.checked_at) AS ended_at FROM runs n
                       WHERE n.probe = o.probe AND n.run = o.run + 1 AND NOT n.down) e ON true
    ORDER BY o.started_at DESC, o.probe
$$;
COMMENT ON FUNCTION site_outages(timestamptz, timestamptz, text) IS
    'The outages of one url in [window_start, window_end), per probe, newest first: runs of failed reports (inconclusive ones left out), from the first failure to the next success (ended_at NULL while still going; duration_s then up to now), with how many failures and their error kinds. From the raw reports: only within the raw retention.';

-- The last reports of one site, newest first: what a detail page lists.
CREATE OR REPLACE FUNCTION site_reports(url text, max_reports integer DEFAULT 20)
    RETURNS TABLE (url text, probe text, checked_at timestamptz, code integer, response_ms double precision,
                   error_kind text, error_message text, inconclusive boolean, interval_s integer,
                   http_version text, redirects integer, timing_dns_ms double precision,
                   timing_connect_ms double precision, timing_tls_ms double precision,
                   timing_ttfb_ms double precision, timing_transfer_ms double precision,
                   tls_expires_at timestamptz, regexp_match text, site_name text, site_group text,
                   tls_chain_expires_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.url, r.probe, r.checked_at, r.code, r.response_ms, r.error_kind, r.error_message, r.inconclusive,
           r.interval_s, r.http_version, r.redirects, r.timing_dns_ms, r.timing_connect_ms, r.timing_tls_ms,
           r.timing_ttfb_ms, r.timing_transfer_ms, r.tls_expires_at, r.regexp_match, r.site_name, r.site_group,
           r.tls_chain_expires_at
    FROM reports r
    WHERE r.url = site_reports.url
    ORDER BY r.checked_at DESC
    LIMIT least(greatest(coalesce(max_reports, 20), 0), 1000)
$$;
COMMENT ON FUNCTION site_reports(text, integer) IS
    'The last max_reports (at most 1,000) archived reports of one url, all probes, newest first: times, error, timings, certificate, name and group.';

-- ------------------------------------------------------------------------------------------------
-- What the rollups still hold. The consumer expires hourly rollups sooner than daily ones
-- (WEBSENTRY_ROLLUP_HOURLY_RETENTION_DAYS, WEBSENTRY_ROLLUP_RETENTION_DAYS): before a level's
-- kept_from its rows are gone, and the answers above say so by how they take a window (whole days
-- before the hourly horizon) rather than by counting the time as unmeasured.
CREATE OR REPLACE VIEW rollup_horizons AS
    SELECT l.level, r.kept_from
    FROM (VALUES ('hour'), ('day')) l(level) LEFT JOIN rollup_retention r ON r.level = l.level;
COMMENT ON VIEW rollup_horizons IS
    'Per rollup level (hour, day): kept_from, the UTC midnight from which its rows are all kept (NULL: none expired yet). site_summary takes a window''s edge in whole days where it falls before the hourly kept_from; site_timeline and site_latency give hours from it on. Before the daily kept_from nothing is known: that time counts as unknown. Example: SELECT * FROM rollup_horizons;';

-- ------------------------------------------------------------------------------------------------
-- The latest state of each site.

CREATE OR REPLACE VIEW latest_reports AS
    SELECT r.*
    FROM (SELECT url, probe, max(last_checked_at) AS last_checked_at
          FROM rollup_daily WHERE day >= (now() AT TIME ZONE 'UTC')::date - 7
          GROUP BY url, probe) s
    CROSS JOIN LATERAL (
        SELECT * FROM reports r
        WHERE r.url = s.url AND r.checked_at = s.last_checked_at AND r.probe = s.probe
        LIMIT 1) r;
COMMENT ON VIEW latest_reports IS
    'The latest archived report of each (url, probe) seen in the last 7 days (UTC days), one index lookup each; its columns are those of reports.';

CREATE OR REPLACE VIEW certificates_expiring AS
    SELECT url, probe, tls_expires_at,
           extract(epoch FROM tls_expires_at - now()) / 86400 AS days_left,
           checked_at AS last_checked_at, tls_chain_expires_at,
           extract(epoch FROM tls_chain_expires_at - now()) / 86400 AS chain_days_left
    FROM latest_reports
    WHERE tls_expires_at IS NOT NULL
    ORDER BY tls_expires_at;
COMMENT ON VIEW certificates_expiring IS
    'The certificate each https site showed in its latest report: tls_expires_at and days_left are the leaf''s notAfter; tls_chain_expires_at and chain_days_left the earliest of the whole chain it presented (leaf and intermediates; NULL from older builds). Soonest leaf expiry first; days are fractional. Example: SELECT * FROM certificates_expiring WHERE least(days_left, chain_days_left) < 30;';

-- ------------------------------------------------------------------------------------------------
-- site_states: the state of each (url, probe) now, one definition for every reader (the status
-- page, the per-site metrics, people): the latest report, how many conclusive failures in a row
-- led to it, and up / down / unknown.
--   unknown: the latest report is older than twice its cadence (ten minutes when it states none):
--            nobody measured the site lately; or the latest report is an inconclusive failure.
--   down:    the latest report failed (conclusively).
--   up:      the latest report succeeded.
-- consecutive_failures counts the conclusive failures since the last success (inconclusive ones are
-- skipped), within the raw retention: two index lookups per site, so cheap while sites are up.
CREATE OR REPLACE VIEW site_states AS
    SELECT l.url, l.probe, l.site_name, l.site_group, l.checked_at, l.interval_s, l.code, l.response_ms,
           l.error_kind, l.error_message, l.inconclusive, l.http_version, l.redirects,
           l.timing_dns_ms, l.timing_connect_ms, l.timing_tls_ms, l.timing_ttfb_ms, l.timing_transfer_ms,
           l.tls_expires_at, l.tls_chain_expires_at, f.failures AS consecutive_failures,
           CASE WHEN l.checked_at < now() - 2 * make_interval(secs => coalesce(l.interval_s, 300)) THEN 'unknown'
                WHEN l.error_kind IS NOT NULL AND l.inconclusive THEN 'unknown'
                WHEN l.error_kind IS NOT NULL THEN 'down'
                ELSE 'up' END AS state,
           l.checked_at < now() - 2 * make_interval(secs => coalesce(l.interval_s, 300)) AS stale
    FROM latest_reports l
    LEFT JOIN LATERAL (
        SELECT r.checked_at AS at FROM reports r
        WHERE r.url = l.url AND r.probe = l.probe AND r.error_kind IS NULL AND r.checked_at <= l.checked_at
        ORDER BY r.checked_at DESC LIMIT 1) s0 ON true
    CROSS JOIN LATERAL (
        SELECT count(*) AS failures FROM reports r
        WHERE r.url = l.url AND r.probe = l.probe AND r.error_kind IS NOT NULL AND NOT r.inconclusive
          AND r.checked_at <= l.checked_at AND r.checked_at > coalesce(s0.at, '-infinity')) f;
COMMENT ON VIEW site_states IS
    'The state of each (url, probe) seen in the last 7 days: its latest report''s fields, consecutive_failures (conclusive failures since the last success, within the raw retention), state (up, down, or unknown when the latest report is older than twice its cadence — ten minutes without one — or an inconclusive failure) and stale (older than twice its cadence). Example: SELECT url, probe, state, consecutive_failures FROM site_states WHERE state <> ''up'';';

-- Functions are executable by PUBLIC unless revoked; grants.sql gives them to who needs them.
REVOKE EXECUTE ON FUNCTION
    websentry_rfc3339(timestamptz, smallint), report_document(reports), websentry_bucket(double precision),
    websentry_bucket_ms(integer), websentry_percentiles(bigint[]),
    websentry_span_us(timestamptz, interval), websentry_down_us(bigint, bigint, double precision),
    websentry_measured_us(bigint, double precision),
    websentry_window_measured(timestamptz, timestamptz, double precision, double precision, integer),
    websentry_timeline_bounds(timestamptz, timestamptz, text),
    site_timeline(timestamptz, timestamptz, text, text), websentry_site_days(date, date, text),
    site_days(timestamptz, timestamptz, text),
    site_latency(timestamptz, timestamptz, text, text), site_outages(timestamptz, timestamptz, text),
    site_reports(text, integer), websentry_required_url(text, text),
    websentry_summary_bounds(timestamptz, timestamptz), websentry_hourly_from(),
    websentry_site_summary_one(timestamptz, timestamptz, text, boolean),
    websentry_site_summary_all(timestamptz, timestamptz, boolean, boolean),
    websentry_first_day_after(timestamptz), websentry_kept_window(timestamptz, timestamptz),
    websentry_window_parts(date, date, date, date, timestamptz, timestamptz, timestamptz, timestamptz, date, timestamptz, bigint[]),
    websentry_kept_months(timestamptz, timestamptz), websentry_kept_month_around(timestamptz),
    websentry_keep_windows(interval[], interval),
    site_summary(timestamptz, timestamptz, text), site_summary_pooled(timestamptz, timestamptz, text),
    site_uptime(timestamptz, timestamptz, text), site_uptime_pooled(timestamptz, timestamptz, text),
    site_timeline_pooled(timestamptz, timestamptz, text, text)
    FROM PUBLIC;
