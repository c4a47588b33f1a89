-- Alert routing (SPEC section 5a): channels, per-license routing, escalation, acknowledgement
-- and camera-level (`partial`) episodes. Every delivery, e-mail or HTTP, is one outbox row.

-- A tenant's channels. `config` holds the kind's fields as checked by the application,
-- secrets included (a webhook secret must be usable to sign, so it cannot be hashed); the API
-- and UI never return them (they show `[redacted]`), and the table is tenant-isolated by RLS.
CREATE TABLE channels (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid NOT NULL,
    name       text NOT NULL CONSTRAINT channels_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    kind       text NOT NULL CONSTRAINT channels_kind CHECK (kind IN ('email', 'webhook', 'slack', 'teams', 'pagerduty', 'ntfy')),
    config     jsonb NOT NULL CONSTRAINT channels_config_object CHECK (jsonb_typeof(config) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE channels ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON channels
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON channels TO streamwatch_app;

-- Routing per license: channels besides the plain recipients, up to 3 escalation steps
-- (`[{"after_seconds": N, "channels": [uuid, ...]}]`, checked by the application), and
-- camera-level alerts. A deleted channel is removed from every license's lists by the
-- application in the same transaction.
ALTER TABLE notification_settings
    ADD COLUMN channels uuid[] NOT NULL DEFAULT '{}'
        CONSTRAINT notification_channels_count CHECK (cardinality(channels) <= 20),
    ADD COLUMN escalation jsonb NOT NULL DEFAULT '[]'
        CONSTRAINT notification_escalation_steps CHECK (jsonb_typeof(escalation) = 'array' AND jsonb_array_length(escalation) <= 3),
    ADD COLUMN partial_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN partial_after_seconds integer NOT NULL DEFAULT 3600
        CONSTRAINT notification_partial_after_range CHECK (partial_after_seconds BETWEEN 300 AND 2592000),
    -- Since when the sweep has seen the license Partially Active without a break (NULL: not).
    ADD COLUMN partial_since timestamptz,
    DROP CONSTRAINT notification_enabled_needs_recipients,
    ADD CONSTRAINT notification_enabled_needs_a_target
        CHECK (NOT enabled OR cardinality(recipients) + cardinality(channels) >= 1);

-- Episodes are `inactive` (section 5) or `partial` (cameras not active); still at most one open
-- per license: an inactivity episode closes a partial one silently.
ALTER TABLE notification_episodes
    ADD COLUMN kind text NOT NULL DEFAULT 'inactive'
        CONSTRAINT notification_episodes_kind CHECK (kind IN ('inactive', 'partial')),
    ADD COLUMN acknowledged_at timestamptz,
    -- Who: a user's e-mail, an API key's name, or "link from <recipient or channel>".
    ADD COLUMN acknowledged_by text,
    -- Escalation steps decided so far (0..3).
    ADD COLUMN escalated integer NOT NULL DEFAULT 0,
    -- For a partial episode: the cameras not active when it opened (`[{camera_id, state, reason}]`).
    ADD COLUMN cameras jsonb NOT NULL DEFAULT '[]';

-- One row per (event, target): `recipient` is the e-mail address for an e-mail, or the channel
-- id for an HTTP channel, so the unique key still holds each delivery once. `channel_id` is
-- NULL for a license's plain recipients.
ALTER TABLE notification_outbox
    DROP CONSTRAINT notification_outbox_kind,
    ADD CONSTRAINT notification_outbox_kind
        CHECK (kind IN ('inactive', 'reminder', 'recovery', 'escalated', 'partial', 'partial_recovered')),
    ADD COLUMN channel_id uuid,
    ADD COLUMN channel_kind text NOT NULL DEFAULT 'email'
        CONSTRAINT notification_outbox_channel_kind CHECK (channel_kind IN ('email', 'webhook', 'slack', 'teams', 'pagerduty', 'ntfy'));
