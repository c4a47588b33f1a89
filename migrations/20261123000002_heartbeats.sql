-- Heartbeat ingest: agent instances (the exactly-once high-water mark and the newest reports),
-- camera state, and the heartbeat history behind the activity timeline.
--
-- Write cost shapes this schema (docs/BENCHMARKS.md). A healthy heartbeat updates one row
-- (its agent instance) and appends one narrow history row. Camera rows change only when a
-- camera's derived state changes, and the full camera reports live in one jsonb column of the
-- instance row.

-- One row per agent instance (an agent's state directory; SPEC section 3). `high_water_seq` is
-- the exactly-once mechanism: a heartbeat with seq <= it is a duplicate. Instances of one
-- license are independent sequence spaces; a reinstalled agent is a new instance.
CREATE TABLE agent_instances (
    tenant_id            uuid NOT NULL,
    license_id           uuid NOT NULL,
    instance_id          uuid NOT NULL,
    hostname             text NOT NULL DEFAULT '',
    version              text NOT NULL DEFAULT '',
    high_water_seq       bigint NOT NULL,
    first_seen_at        timestamptz NOT NULL,
    -- Server receive time of the newest accepted request.
    last_received_at     timestamptz NOT NULL,
    -- Activity time (SPEC section 3 time rules) of the newest accepted heartbeat; freshness and
    -- "last activity" are read from here.
    last_activity_at     timestamptz NOT NULL,
    -- The agent's clock minus the server's, measured on the newest request, in milliseconds.
    clock_offset_ms      bigint NOT NULL DEFAULT 0,
    -- The newest heartbeat's seq, observation time (agent clock) and camera reports
    -- (credentials stripped), keyed by camera id.
    last_seq             bigint NOT NULL,
    last_observed_at     timestamptz NOT NULL,
    cameras              jsonb NOT NULL DEFAULT '{}',
    -- Summaries of `cameras`, computed at ingest so that the license list (thousands of
    -- licenses) never opens the jsonb: cameras whose webhooks fail, and deliveries cached.
    webhooks_failing     integer NOT NULL DEFAULT 0,
    webhooks_cached      bigint NOT NULL DEFAULT 0,
    heartbeats_total     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, license_id, instance_id),
    FOREIGN KEY (tenant_id, license_id) REFERENCES licenses (tenant_id, id) ON DELETE CASCADE
);
-- No index on the hot-updated columns (last_*), so updates stay HOT.

-- One row per camera of a license: which instance reported it last and the state its newest
-- report implies if that report is fresh (SPEC section 4). Rewritten only when that state
-- changes. A camera is retired (deleted) when the instance that reported it last sends a
-- heartbeat without it.
CREATE TABLE camera_state (
    tenant_id      uuid NOT NULL,
    license_id     uuid NOT NULL,
    camera_id      text NOT NULL,
    instance_id    uuid NOT NULL,
    state_if_fresh text NOT NULL CONSTRAINT camera_state_valid
        CHECK (state_if_fresh IN ('active', 'degraded', 'starving', 'starting', 'inactive')),
    changed_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, license_id, camera_id),
    FOREIGN KEY (tenant_id, license_id, instance_id)
        REFERENCES agent_instances (tenant_id, license_id, instance_id) ON DELETE CASCADE
);

-- Every accepted heartbeat, narrow, partitioned by day of activity time so that retention
-- drops whole partitions. Partitions are created ahead by the application
-- (`store::heartbeats::ensure_partitions`); the default partition catches anything else.
CREATE TABLE heartbeats (
    tenant_id      uuid NOT NULL,
    license_id     uuid NOT NULL,
    instance_id    uuid NOT NULL,
    seq            bigint NOT NULL,
    activity_at    timestamptz NOT NULL,
    received_at    timestamptz NOT NULL,
    observed_at    timestamptz NOT NULL,
    cameras_total  smallint NOT NULL,
    cameras_active smallint NOT NULL
) PARTITION BY RANGE (activity_at);
CREATE TABLE heartbeats_default PARTITION OF heartbeats DEFAULT;
-- The activity timeline reads one license over a time range.
CREATE INDEX heartbeats_license_time_idx ON heartbeats (tenant_id, license_id, activity_at);

ALTER TABLE agent_instances ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agent_instances
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);
ALTER TABLE camera_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON camera_state
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);
ALTER TABLE heartbeats ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON heartbeats
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);

-- Request-scoped reads only; the ingest writer writes as the owner role.
GRANT SELECT ON agent_instances, camera_state, heartbeats TO streamwatch_app;
-- Deleting a license cascades into these tables inside a tenant transaction.
GRANT DELETE ON agent_instances, camera_state TO streamwatch_app;
