-- Quiet periods (SPEC section 5b): tags on licenses, a snooze per license, and maintenance
-- windows. All of it is rows here, so every replica and every restart agrees on what is quiet.

-- Up to 20 tags per license, each `[a-z0-9][a-z0-9:._-]{0,63}` (checked by the application,
-- which words the problem per tag; the constraint is the backstop).
ALTER TABLE licenses
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}'
        CONSTRAINT licenses_tags_bounded CHECK (cardinality(tags) <= 20),
    -- The latest snooze: quiet from `snoozed_at` until `snoozed_until`. Ending it early moves
    -- `snoozed_until` to that moment, so the time it was in force still counts as quiet.
    ADD COLUMN snoozed_at timestamptz,
    ADD COLUMN snoozed_until timestamptz,
    ADD CONSTRAINT licenses_snooze_span CHECK ((snoozed_at IS NULL) = (snoozed_until IS NULL));
-- `?tag=a&tag=b` is `tags @> '{a,b}'`.
CREATE INDEX licenses_tags_idx ON licenses USING gin (tags);

-- A window is one-off (`starts_at`..`ends_at`) or recurring: an RFC 5545 RRULE read in
-- `timezone` from `starts_at` (its DTSTART), each occurrence lasting `duration_seconds`.
-- Its scope is some licenses, some tags (any of them), or the whole tenant.
CREATE TABLE maintenance_windows (
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                uuid NOT NULL,
    name              text NOT NULL CONSTRAINT maintenance_windows_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    scope_all         boolean NOT NULL DEFAULT false,
    scope_license_ids uuid[] NOT NULL DEFAULT '{}',
    scope_tags        text[] NOT NULL DEFAULT '{}',
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz,
    rrule             text,
    duration_seconds  integer,
    timezone          text NOT NULL DEFAULT 'UTC',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT maintenance_windows_one_scope CHECK (
        (scope_all AND cardinality(scope_license_ids) = 0 AND cardinality(scope_tags) = 0)
        OR (NOT scope_all AND (cardinality(scope_license_ids) > 0) <> (cardinality(scope_tags) > 0))
    ),
    CONSTRAINT maintenance_windows_schedule CHECK (
        (rrule IS NULL AND ends_at > starts_at AND duration_seconds IS NULL)
        OR (rrule IS NOT NULL AND ends_at IS NULL AND duration_seconds > 0)
    )
);

ALTER TABLE maintenance_windows ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON maintenance_windows
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON maintenance_windows TO streamwatch_app;
