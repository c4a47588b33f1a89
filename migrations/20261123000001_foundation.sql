-- Foundation schema: tenants, users, API keys, licenses and agent tokens.
--
-- Two rules shape every tenant table here:
--  * Citus-ready keys. Every primary and unique key leads with tenant_id and every foreign key
--    includes it, so that distributing by tenant_id later keeps each tenant's rows, joins and
--    constraints on one shard (docs/SCALING.md).
--  * Row-level security is the second wall behind the `WHERE tenant_id = $1` of every query.
--    Request-scoped work runs as the role `streamwatch_app` with `streamwatch.tenant_id` set for
--    the transaction (src/db.rs); the policies below then hide every other tenant's rows even
--    from a query that forgot its filter. The connecting (owner) role is not subject to RLS and
--    is used only by paths that span tenants by design: credential lookup, the batching ingest
--    writer and the notification sweep.

-- The role request-scoped transactions switch to. Roles are cluster-wide, and several databases
-- (one per test) may run this migration at the same moment, so creation tolerates a race.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'streamwatch_app') THEN
        CREATE ROLE streamwatch_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- A non-superuser owner must be a member of the role to `SET ROLE` to it.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'streamwatch_app', 'MEMBER') THEN
        EXECUTE format('GRANT streamwatch_app TO %I', current_user);
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO streamwatch_app;

-- The tenant's id is its distribution key; in Citus `tenants` is distributed by `id` and
-- colocated with every other tenant table.
CREATE TABLE tenants (
    id           uuid PRIMARY KEY,
    name         text NOT NULL CONSTRAINT tenants_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    -- IANA name; every display of time for this tenant (UI, e-mails) uses it.
    timezone     text NOT NULL DEFAULT 'UTC',
    -- A suspended tenant keeps its data, but none of its credentials work (403).
    suspended_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    -- Stored lower-cased: addresses are compared case-insensitively.
    email         text NOT NULL,
    -- argon2id PHC string; never a plain password.
    password_hash text NOT NULL,
    role          text NOT NULL CONSTRAINT users_role_valid CHECK (role IN ('owner', 'admin', 'viewer')),
    -- Part of every JWT; bumping it (password change, "log out everywhere") revokes older tokens.
    token_version integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT users_email_unique UNIQUE (tenant_id, email)
);

-- Login names an account by e-mail alone, so an address may belong to one user across all
-- tenants. This directory is that one global key; under Citus it becomes a reference table
-- (and the foreign key is dropped; the code writes and deletes both rows in one transaction).
CREATE TABLE login_emails (
    email     text PRIMARY KEY,
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE api_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    name         text NOT NULL CONSTRAINT api_keys_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    role         text NOT NULL CONSTRAINT api_keys_role_valid CHECK (role IN ('admin', 'viewer')),
    -- SHA-256 of the whole secret. The secret has 256 random bits, so a fast hash is enough;
    -- the plain key is shown once at creation and never stored.
    secret_hash  bytea NOT NULL,
    -- The first characters of the key, so that people can tell their keys apart.
    prefix       text NOT NULL,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT api_keys_secret_unique UNIQUE (tenant_id, secret_hash)
);
-- Authentication looks a key up by its hash before it knows the tenant.
CREATE INDEX api_keys_secret_hash_idx ON api_keys (secret_hash);

CREATE TABLE licenses (
    tenant_id              uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                     uuid NOT NULL,
    key                    text NOT NULL CONSTRAINT licenses_key_format CHECK (key ~ '^[A-Za-z0-9._-]{1,64}$'),
    name                   text NOT NULL CONSTRAINT licenses_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    kind                   text NOT NULL CONSTRAINT licenses_kind_valid CHECK (kind IN ('direct', 'cloud')),
    -- SPEC section 4: 1 min .. 24 h, default 10 min.
    check_interval_seconds integer NOT NULL DEFAULT 600
        CONSTRAINT licenses_check_interval_range CHECK (check_interval_seconds BETWEEN 60 AND 86400),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT licenses_key_unique UNIQUE (tenant_id, key)
);
-- Keyset pagination of the license list for each sort order (name and created_at; key is
-- served by licenses_key_unique).
CREATE INDEX licenses_name_idx ON licenses (tenant_id, name, id);
CREATE INDEX licenses_created_idx ON licenses (tenant_id, created_at, id);

CREATE TABLE agent_tokens (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL,
    license_id   uuid NOT NULL,
    name         text NOT NULL CONSTRAINT agent_tokens_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    secret_hash  bytea NOT NULL,
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT agent_tokens_secret_unique UNIQUE (tenant_id, secret_hash),
    -- Deleting a license deletes its tokens: a deleted license's agent is refused at once.
    FOREIGN KEY (tenant_id, license_id) REFERENCES licenses (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX agent_tokens_secret_hash_idx ON agent_tokens (secret_hash);
CREATE INDEX agent_tokens_license_idx ON agent_tokens (tenant_id, license_id);

-- Row-level security: the policies read the tenant that src/db.rs sets for the transaction.
-- NULLIF: after a transaction-local set_config ends the setting reads '' (not NULL) for the
-- rest of the session, and ''::uuid would raise instead of matching nothing.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);

ALTER TABLE login_emails ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON login_emails
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);

ALTER TABLE licenses ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON licenses
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);

ALTER TABLE agent_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agent_tokens
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);

GRANT SELECT, UPDATE ON tenants TO streamwatch_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, login_emails, api_keys, licenses, agent_tokens TO streamwatch_app;
