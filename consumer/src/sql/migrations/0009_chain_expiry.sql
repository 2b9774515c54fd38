-- Websentry archive, schema version 9: the earliest expiry of the certificate chain a site
-- presented (leaf and intermediates), beside its leaf's.

ALTER TABLE reports ADD COLUMN tls_chain_expires_at timestamptz;

COMMENT ON COLUMN reports.tls_chain_expires_at IS
    'The earliest notAfter of every certificate the final https server presented (leaf and intermediates; blackbox_exporter''s probe_ssl_earliest_cert_expiry). NULL for http, and in reports of older builds. tls_expires_at is the leaf''s alone.';

-- site_reports returns the new column: CREATE OR REPLACE cannot change what a function returns.
-- IF EXISTS: a new database runs every migration before the interface is first applied.
DROP FUNCTION IF EXISTS site_reports(text, integer);
