-- Live ingest (issue 18): every heartbeat rewrites its agent instance's row, with the newest
-- camera reports (`cameras`, about 2.4 KB of jsonb for 4 cameras). Two storage settings make
-- that rewrite cheaper for PostgreSQL without changing what is stored:
--
-- * fillfactor 50: new pages are left half empty, so that the next version of a row usually
--   fits on its own page and the update is HOT (no new primary-key entry, and the dead version
--   is pruned on the page). At the default (100) a third of the benchmark's updates were not
--   HOT, and index scans walked their dead entries (`_bt_killitems` in the profile). Existing
--   pages keep their layout until they are rewritten; new rows and new pages follow.
-- * lz4 for `cameras`: the value is over the 2 KB toast threshold, so it is compressed on every
--   update; pglz cost a few percent of PostgreSQL's CPU in the live benchmark, lz4 a fraction
--   of that. A PostgreSQL built without lz4 keeps pglz (the block below only notices).
ALTER TABLE agent_instances SET (fillfactor = 50);

DO $$
BEGIN
    ALTER TABLE agent_instances ALTER COLUMN cameras SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'agent_instances.cameras keeps the default compression: %', SQLERRM;
END
$$;
