-- Websentry's database users, set up once by an administrator (a superuser, or a role with
-- CREATEROLE that may change the schema's owner), connected to the archive's database:
--
--   psql -v owner=websentry_owner -v consumer=websentry -v reader=websentry_reader -d websentry \
--        -f deploy/postgres/roles.sql
--   psql -d websentry -c '\password websentry_owner' -c '\password websentry' -c '\password websentry_reader'
--
--   owner     owns the schema: runs the migrations (`websentry-consumer --migrate-only`, the
--             Kubernetes Job websentry-migrate), then grants.sql after each of them.
--   consumer  the consumer daemon's user: reads and writes the archive, creates and drops nothing
--             (its exact grants are in grants.sql).
--   reader    optional (leave `-v reader=…` out for none): reads the SQL interface and nothing
--             else, for the status page, Grafana and people (its grants are in grants.sql).
--
-- Idempotent: roles that exist are kept (and their passwords), grants given again.
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN', :'owner')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'consumer')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'consumer') \gexec
\if :{?reader}
SELECT format('CREATE ROLE %I LOGIN', :'reader')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader') \gexec
\endif

-- The tables live in `public`; its owner creates and changes them. No one else creates anything
-- there (PostgreSQL 15 and later revoke it already; older versions gave it to everyone).
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Both connect; the consumer also needs temporary tables of its own (each batch's rollups go
-- through one, and so does a batch that met a report archived meanwhile by another writer) and to
-- find the tables in `public`. These are granted by name: an
-- administrator may revoke what PostgreSQL gives PUBLIC on the database (`REVOKE ALL ON DATABASE
-- websentry FROM PUBLIC`), and the e2e test does.
SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(), :'owner', :'consumer') \gexec
SELECT format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), :'consumer') \gexec
GRANT USAGE ON SCHEMA public TO :"consumer";
-- The reader connects and finds the interface in `public`; no temporary tables.
\if :{?reader}
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'reader') \gexec
GRANT USAGE ON SCHEMA public TO :"reader";
\endif
