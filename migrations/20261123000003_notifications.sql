-- Inactivity e-mail notifications (SPEC section 5): settings, episodes, the outbox (which is
-- also the exactly-once ledger), the control plane's own alive spans, and the simulated clock.

-- One row per license that ever had notifications configured.
CREATE TABLE notification_settings (
    tenant_id                     uuid NOT NULL,
    license_id                    uuid NOT NULL,
    enabled                       boolean NOT NULL DEFAULT false,
    -- SPEC section 5 bounds: 1 h .. 30 days, enforced here as well as in the API.
    inactivity_interval_seconds   integer NOT NULL DEFAULT 3600
        CONSTRAINT notification_inactivity_range CHECK (inactivity_interval_seconds BETWEEN 3600 AND 2592000),
    notification_interval_seconds integer NOT NULL DEFAULT 28800
        CONSTRAINT notification_interval_range CHECK (notification_interval_seconds BETWEEN 3600 AND 2592000),
    -- Lower-cased, de-duplicated addresses.
    recipients                    text[] NOT NULL DEFAULT '{}'
        CONSTRAINT notification_recipients_count CHECK (cardinality(recipients) <= 20),
    notify_on_recovery            boolean NOT NULL DEFAULT true,
    -- When notifications were last turned on: the baseline of a license that never reported.
    enabled_at                    timestamptz,
    -- The earliest moment a sweep could have something to do for this license. The sweep reads
    -- only rows with next_check_at <= now, through the partial index below, and moves it on.
    next_check_at                 timestamptz,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, license_id),
    FOREIGN KEY (tenant_id, license_id) REFERENCES licenses (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT notification_enabled_needs_recipients CHECK (NOT enabled OR cardinality(recipients) >= 1)
);
-- Disabled licenses without an open episode have no next_check_at and are not indexed.
CREATE INDEX notification_settings_due_idx ON notification_settings (next_check_at) WHERE next_check_at IS NOT NULL;

-- An inactivity episode: from the moment the license counts as inactive until activity returns.
CREATE TABLE notification_episodes (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    license_id  uuid NOT NULL,
    baseline_at timestamptz NOT NULL,
    opened_at   timestamptz NOT NULL,
    -- The highest e-mail number decided so far: 0 = the first e-mail, k = reminder k.
    last_sent   integer NOT NULL DEFAULT 0,
    closed_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, license_id) REFERENCES licenses (tenant_id, id) ON DELETE CASCADE
);
-- At most one open episode per license.
CREATE UNIQUE INDEX notification_episodes_open_idx ON notification_episodes (tenant_id, license_id) WHERE closed_at IS NULL;

-- Every e-mail decided, one row per (episode, e-mail, recipient). The unique key is the
-- exactly-once ledger: a decision made twice (two replicas, a retried sweep) inserts nothing
-- the second time. Senders claim rows with a lease (FOR UPDATE SKIP LOCKED).
CREATE TABLE notification_outbox (
    tenant_id       uuid NOT NULL,
    id              uuid NOT NULL,
    license_id      uuid NOT NULL,
    episode_id      uuid NOT NULL,
    -- 'inactive' (k = 0), 'reminder' (k >= 1) or 'recovery'.
    kind            text NOT NULL CONSTRAINT notification_outbox_kind CHECK (kind IN ('inactive', 'reminder', 'recovery')),
    k               integer NOT NULL,
    recipient       text NOT NULL,
    due_at          timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    -- pending -> sending (leased) -> sent | failed (gave up after 24 h of retries)
    state           text NOT NULL DEFAULT 'pending'
        CONSTRAINT notification_outbox_state CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    last_error      text,
    sent_at         timestamptz,
    -- The Message-ID of the e-mail that carried this row (a digest carries several).
    message_id      text,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT notification_outbox_once UNIQUE (tenant_id, episode_id, kind, k, recipient),
    FOREIGN KEY (tenant_id, license_id) REFERENCES licenses (tenant_id, id) ON DELETE CASCADE
);
-- Senders look for work across tenants: only unfinished rows are indexed.
CREATE INDEX notification_outbox_work_idx ON notification_outbox (next_attempt_at) WHERE state IN ('pending', 'sending');
CREATE INDEX notification_outbox_license_idx ON notification_outbox (tenant_id, license_id, created_at);

-- When the control plane was alive. Every replica's sweep extends the newest span if it ended
-- recently, else starts a new one; the gaps between spans (the service or PostgreSQL down) do
-- not count toward any license's inactivity. Not a tenant table.
CREATE TABLE control_plane_alive (
    id         bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz NOT NULL
);
CREATE INDEX control_plane_alive_end_idx ON control_plane_alive (ended_at);

-- The simulated clock's offset, shared by every replica (SPEC section 5; tests and demos only).
CREATE TABLE simulated_clock (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    offset_ms bigint NOT NULL DEFAULT 0
);

ALTER TABLE notification_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notification_settings
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);
ALTER TABLE notification_episodes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notification_episodes
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);
ALTER TABLE notification_outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notification_outbox
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON notification_settings, notification_episodes, notification_outbox TO streamwatch_app;
