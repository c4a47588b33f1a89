-- A per-license roll-up of its agent instances, on the license row itself, so that the license
-- list, the per-status counts and the Monitoring page compute a license's status from its own
-- row: no join, no aggregate (docs/UI.md, Performance). Kept exact by the ingest writer, which
-- recomputes it from `agent_instances` at the end of every transaction for the licenses it
-- touched, under the instance locks it holds (`ingest::writer::refresh_rollup`). Instances are
-- only ever written by the writer, and only deleted with their license.
--
-- Freshness is still decided at read time. If the oldest instance is fresh, all are, and the
-- sums are the license's counts; if the newest is stale, none is. Only in between (two or more
-- instances, some stale) does the read fall back to the instance rows.
ALTER TABLE licenses
    ADD COLUMN instances                integer NOT NULL DEFAULT 0,
    ADD COLUMN activity_newest          timestamptz,
    ADD COLUMN activity_oldest          timestamptz,
    ADD COLUMN cameras_total            integer NOT NULL DEFAULT 0,
    ADD COLUMN cameras_active_if_fresh  integer NOT NULL DEFAULT 0,
    ADD COLUMN cameras_working_if_fresh integer NOT NULL DEFAULT 0,
    ADD COLUMN webhooks_failing         integer NOT NULL DEFAULT 0,
    ADD COLUMN webhooks_cached          bigint NOT NULL DEFAULT 0;

UPDATE licenses l
SET instances = r.instances, activity_newest = r.newest, activity_oldest = r.oldest,
    cameras_total = r.total, cameras_active_if_fresh = r.active,
    cameras_working_if_fresh = r.working, webhooks_failing = r.failing, webhooks_cached = r.cached
FROM (
    SELECT tenant_id, license_id, count(*)::int AS instances,
           max(last_activity_at) AS newest, min(last_activity_at) AS oldest,
           sum(cameras_total)::int AS total, sum(cameras_active_if_fresh)::int AS active,
           sum(cameras_working_if_fresh)::int AS working,
           sum(webhooks_failing)::int AS failing, sum(webhooks_cached)::int8 AS cached
    FROM agent_instances
    GROUP BY tenant_id, license_id
) r
WHERE l.tenant_id = r.tenant_id AND l.id = r.license_id;
