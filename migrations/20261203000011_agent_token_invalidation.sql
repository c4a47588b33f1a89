-- Every server process caches verified agent tokens in memory (src/ingest/token_cache.rs), so
-- that an ingest request does not read `agent_tokens`, `licenses` and `tenants` each time. A
-- revocation must still act at once on every replica: every change that can make a cached token
-- wrong sends a notification on the channel `streamwatch_agent_tokens` in the transaction of the
-- change, and each process's listener evicts what it names as soon as the change commits.
--
-- Triggers rather than code in each handler: the JSON API, the web UI, the CLI, cascades and a
-- statement typed by an operator all change these rows, and none of them may forget it.
--
-- Payloads (at most a few dozen bytes; PostgreSQL drops duplicates within a transaction):
--   token:<hex of secret_hash>   one token changed (revoked, deleted, moved)
--   license:<license id>         every token of that license (deleted, check interval changed)
--   tenant:<tenant id>           every token of that tenant (suspended, reinstated, deleted)
--   all                          everything (TRUNCATE)
-- The secret's SHA-256 is what the cache is keyed by; the secret itself is never stored.
CREATE FUNCTION notify_agent_token_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('streamwatch_agent_tokens', 'all');
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'agent_tokens' THEN
        PERFORM pg_notify('streamwatch_agent_tokens', 'token:' || encode(OLD.secret_hash, 'hex'));
    ELSIF TG_TABLE_NAME = 'licenses' THEN
        PERFORM pg_notify('streamwatch_agent_tokens', 'license:' || OLD.id::text);
    ELSE
        PERFORM pg_notify('streamwatch_agent_tokens', 'tenant:' || OLD.id::text);
    END IF;
    RETURN NULL;
END
$$;

-- `last_used_at` (written at most once a minute per token) is no reason to notify: the WHEN
-- clauses keep every ordinary write (the ingest writer's license roll-up among them) silent.
CREATE TRIGGER agent_tokens_notify_change
    AFTER UPDATE OF tenant_id, license_id, secret_hash, revoked_at ON agent_tokens
    FOR EACH ROW
    WHEN ((OLD.tenant_id, OLD.license_id, OLD.secret_hash, OLD.revoked_at)
          IS DISTINCT FROM (NEW.tenant_id, NEW.license_id, NEW.secret_hash, NEW.revoked_at))
    EXECUTE FUNCTION notify_agent_token_change();
CREATE TRIGGER agent_tokens_notify_delete
    AFTER DELETE ON agent_tokens
    FOR EACH ROW EXECUTE FUNCTION notify_agent_token_change();

CREATE TRIGGER licenses_notify_change
    AFTER UPDATE OF tenant_id, id, check_interval_seconds ON licenses
    FOR EACH ROW
    WHEN ((OLD.tenant_id, OLD.id, OLD.check_interval_seconds)
          IS DISTINCT FROM (NEW.tenant_id, NEW.id, NEW.check_interval_seconds))
    EXECUTE FUNCTION notify_agent_token_change();
CREATE TRIGGER licenses_notify_delete
    AFTER DELETE ON licenses
    FOR EACH ROW EXECUTE FUNCTION notify_agent_token_change();

CREATE TRIGGER tenants_notify_change
    AFTER UPDATE OF id, suspended_at ON tenants
    FOR EACH ROW
    WHEN ((OLD.id, OLD.suspended_at) IS DISTINCT FROM (NEW.id, NEW.suspended_at))
    EXECUTE FUNCTION notify_agent_token_change();
CREATE TRIGGER tenants_notify_delete
    AFTER DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION notify_agent_token_change();

CREATE TRIGGER agent_tokens_notify_truncate
    AFTER TRUNCATE ON agent_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION notify_agent_token_change();
CREATE TRIGGER licenses_notify_truncate
    AFTER TRUNCATE ON licenses
    FOR EACH STATEMENT EXECUTE FUNCTION notify_agent_token_change();
CREATE TRIGGER tenants_notify_truncate
    AFTER TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_agent_token_change();
