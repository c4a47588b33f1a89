-- API keys die with their creator's rights (SPEC section 2): deleting a user revokes the API
-- keys they created; demoting one revokes those of their keys above the new role. Keys are
-- `admin` or `viewer`, so only a demotion to `viewer` revokes anything (an owner made admin
-- keeps keys no stronger than admin).
--
-- A trigger rather than code in each handler: the JSON API, the web UI, the CLI and a statement
-- typed by an operator all change users, and every one of them must keep the rule. It runs in
-- the transaction of the change, under the caller's role and row-level security (the keys are
-- in the user's own tenant).
CREATE FUNCTION revoke_api_keys_beyond_their_creator() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE api_keys SET revoked_at = now()
         WHERE tenant_id = OLD.tenant_id AND created_by = OLD.id AND revoked_at IS NULL;
        RETURN OLD;
    END IF;
    IF NEW.role = 'viewer' AND OLD.role <> 'viewer' THEN
        UPDATE api_keys SET revoked_at = now()
         WHERE tenant_id = NEW.tenant_id AND created_by = NEW.id AND revoked_at IS NULL
           AND role = 'admin';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_revoke_api_keys_beyond_their_creator
    AFTER UPDATE OF role OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION revoke_api_keys_beyond_their_creator();
