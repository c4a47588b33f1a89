-- Live ingest (issue 18): every writer transaction rewrites the roll-up columns of each license
-- it touched (`activity_newest` and the counts the license list reads), one license row per
-- heartbeat in the live shape. None of those columns is indexed, so the update can be HOT, but
-- only if the new version fits on the row's page: at the default fillfactor (100) the pages of
-- `licenses` are full, and most updates put the new version on another page with a new entry
-- in each of the table's five indexes (the GIN index on `tags` among them). Half-empty pages
-- keep the next version beside the old one. Existing pages keep their layout until they are
-- rewritten (VACUUM FULL, or as rows move); new rows and pages follow.
ALTER TABLE licenses SET (fillfactor = 50);
