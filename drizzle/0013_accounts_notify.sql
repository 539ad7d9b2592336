-- Every change of an account that the hot paths cache (its status, credentials or webhook
-- secrets), made by any statement (the verbs, health's guarded flips, an OAuth refresh, a
-- key rotation, an operator's hand), is announced on `gateway_accounts` with the payload
-- `<provider>/<name>`: each gateway process's account registry LISTENs and forgets it
-- (src/accounts/registry.ts). Bookkeeping columns (last_checked_at, next_check_at, ...) do
-- not announce anything, so the periodic check does not empty every cache.
CREATE OR REPLACE FUNCTION gateway_accounts_notify() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('gateway_accounts', OLD.provider || '/' || OLD.name);
    RETURN OLD;
  END IF;
  PERFORM pg_notify('gateway_accounts', NEW.provider || '/' || NEW.name);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;--> statement-breakpoint
CREATE TRIGGER accounts_notify_insert_delete AFTER INSERT OR DELETE ON accounts
  FOR EACH ROW EXECUTE FUNCTION gateway_accounts_notify();--> statement-breakpoint
CREATE TRIGGER accounts_notify_update AFTER UPDATE ON accounts
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status
    OR OLD.credentials_ciphertext IS DISTINCT FROM NEW.credentials_ciphertext
    OR OLD.credentials_key_id IS DISTINCT FROM NEW.credentials_key_id
    OR OLD.webhook_secrets_ciphertext IS DISTINCT FROM NEW.webhook_secrets_ciphertext
    OR OLD.webhook_secrets_key_id IS DISTINCT FROM NEW.webhook_secrets_key_id
    OR OLD.name IS DISTINCT FROM NEW.name)
  EXECUTE FUNCTION gateway_accounts_notify();
