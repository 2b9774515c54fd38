-- What the consumer's database user may do with the archive, and nothing more. Run by the schema
-- owner after every migration (`--migrate-only`), since a migration may add a table:
--
--   psql -v consumer=websentry -h db.example.com -U websentry_owner -d websentry -f deploy/postgres/grants.sql
--
-- It starts from nothing on every table, so a grant removed here is removed from the database too.
-- The roles themselves: roles.sql. What each grant is for:
--   websentry_migrations  SELECT                  the schema version, checked at every start (a
--                                                 consumer that finds it current changes nothing)
--   reports               INSERT, SELECT (id)     each batch, by COPY; a batch that repeats an id
--                                                 already archived (a producer's retry) goes through
--                                                 a temporary table (TEMPORARY, roles.sql) and
--                                                 INSERT … ON CONFLICT (id) DO NOTHING, which must
--                                                 read the ids it compares: no other column is read
--   consumer_offsets      SELECT, INSERT, UPDATE  read where a partition resumes; store and move it
--                                                 by compare-and-set in the batch's transaction
--   rejected_messages     INSERT                  records that are not reports, with the reason
-- Not granted: UPDATE or DELETE of reports and rejected records, TRUNCATE, REFERENCES, TRIGGER, the
-- `log` view (for people, not for the consumer), creating, changing or dropping anything.
-- Partition locks are session advisory locks, which every user may take.
--
-- Table upkeep to come (dropping old days of a partitioned archive) will be functions owned by the
-- schema owner (SECURITY DEFINER, with a fixed search_path), created by a migration; this file
-- will then add `GRANT EXECUTE ON FUNCTION …` for them, and the consumer still owns nothing.
\set ON_ERROR_STOP on
BEGIN;
-- (Revoking a table's privileges revokes its columns' too.)
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"consumer";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"consumer";
GRANT SELECT ON websentry_migrations TO :"consumer";
GRANT INSERT, SELECT (id) ON reports TO :"consumer";
GRANT SELECT, INSERT, UPDATE ON consumer_offsets TO :"consumer";
GRANT INSERT ON rejected_messages TO :"consumer";
COMMIT;
