-- Per-instance camera counts, so that the license list and the per-status summary compute a
-- license's status from its agent instances alone, without opening `camera_state`
-- (docs/BENCHMARKS.md: the summary of 10,000 licenses took about 95 ms with the camera join).
--
-- They count the `camera_state` rows an instance owns, by the state they would have if fresh
-- (SPEC section 4). Whether they count as active now still depends on the instance's freshness,
-- which is decided at read time, as before. The ingest writer keeps them exact: in every
-- transaction that changes `camera_state`, it recounts the instances of the licenses it
-- touched, in the same transaction (`ingest::writer::recount_cameras`). A transaction that
-- changes no camera row (the steady state) does not write them.
ALTER TABLE agent_instances
    ADD COLUMN cameras_total            integer NOT NULL DEFAULT 0,
    ADD COLUMN cameras_active_if_fresh  integer NOT NULL DEFAULT 0,
    ADD COLUMN cameras_working_if_fresh integer NOT NULL DEFAULT 0;

UPDATE agent_instances a
SET cameras_total = n.total,
    cameras_active_if_fresh = n.active,
    cameras_working_if_fresh = n.working
FROM (
    SELECT tenant_id, license_id, instance_id,
           count(*)::int AS total,
           count(*) FILTER (WHERE state_if_fresh = 'active')::int AS active,
           count(*) FILTER (WHERE state_if_fresh IN ('active', 'degraded'))::int AS working
    FROM camera_state
    GROUP BY tenant_id, license_id, instance_id
) n
WHERE a.tenant_id = n.tenant_id AND a.license_id = n.license_id AND a.instance_id = n.instance_id;
