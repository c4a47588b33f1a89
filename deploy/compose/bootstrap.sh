#!/bin/sh
# One-shot set-up of the docker compose stack (the `bootstrap` service of docker-compose.yml).
#
# Against the running server, through the public API and the platform admin token:
#   1. waits until GET /readyz answers 200 (migrations applied);
#   2. creates the demo tenant and its owner (an existing one is reused);
#   3. logs in as the owner;
#   4. for each agent: creates its license (an existing one is reused) and a new agent token,
#      and writes the agent's configuration: the template with the token filled in;
#   5. turns inactivity e-mails on for the second license, to the owner, so that stopping
#      agent-2 ends up as an e-mail in Mailpit.
# Nothing is done when every agent already has its configuration: `docker compose up` runs this
# every time, and a second run must not mint new tokens.
#
# Environment (defaults for the compose stack):
#   SERVER_URL       http://server:8080
#   ADMIN_TOKEN      the server's STREAMWATCH__AUTH__ADMIN_TOKEN (required)
#   OWNER_EMAIL      admin@demo.test
#   OWNER_PASSWORD   the owner's password (required, at least 10 characters)
#   TEMPLATE_DIR     /templates         agent-N.toml templates (deploy/compose/)
#   OUT_DIR          /out               writes OUT_DIR/agent-N/agent.toml
#   AGENTS           "agent-1 agent-2"
#   AGENT_UID        10001              owner of the written files (the agent image's user)
# Needs curl and jq.
set -eu

SERVER_URL="${SERVER_URL:-http://server:8080}"
ADMIN_TOKEN="${ADMIN_TOKEN:?set ADMIN_TOKEN to the admin token of the server}"
OWNER_EMAIL="${OWNER_EMAIL:-admin@demo.test}"
OWNER_PASSWORD="${OWNER_PASSWORD:?set OWNER_PASSWORD (at least 10 characters)}"
TEMPLATE_DIR="${TEMPLATE_DIR:-/templates}"
OUT_DIR="${OUT_DIR:-/out}"
AGENTS="${AGENTS:-agent-1 agent-2}"
AGENT_UID="${AGENT_UID:-10001}"
API="$SERVER_URL/api/v1"
BODY="$(mktemp)"
trap 'rm -f "$BODY"' EXIT

say() { printf 'bootstrap: %s\n' "$*"; }
fail() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

# call METHOD PATH TOKEN [JSON]: the status code on stdout, the body in $BODY.
call() {
    if [ -n "${4:-}" ]; then
        curl -sS -o "$BODY" -w '%{http_code}' -X "$1" "$API$2" \
            -H "Authorization: Bearer $3" -H 'Content-Type: application/json' --data "$4"
    else
        curl -sS -o "$BODY" -w '%{http_code}' -X "$1" "$API$2" -H "Authorization: Bearer $3"
    fi
}

missing=""
for agent in $AGENTS; do
    [ -s "$OUT_DIR/$agent/agent.toml" ] || missing="$missing $agent"
done
if [ -z "$missing" ]; then
    say "every agent has its configuration already; nothing to do"
    exit 0
fi

say "waiting for $SERVER_URL/readyz"
tries=0
until curl -fsS -o /dev/null "$SERVER_URL/readyz" 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 180 ] || fail "the server did not become ready in 3 minutes (docker compose logs server)"
    sleep 1
done

tenant=$(jq -n --arg email "$OWNER_EMAIL" --arg password "$OWNER_PASSWORD" \
    '{name: "Demo", timezone: "Europe/Berlin", owner: {email: $email, password: $password}}')
status=$(call POST /admin/tenants "$ADMIN_TOKEN" "$tenant")
case "$status" in
    201) say "created tenant Demo with owner $OWNER_EMAIL" ;;
    409) say "the owner $OWNER_EMAIL exists already; reusing that tenant" ;;
    *) fail "POST /admin/tenants answered $status: $(cat "$BODY")" ;;
esac

login=$(jq -n --arg email "$OWNER_EMAIL" --arg password "$OWNER_PASSWORD" '{email: $email, password: $password}')
status=$(curl -sS -o "$BODY" -w '%{http_code}' -X POST "$API/auth/token" \
    -H 'Content-Type: application/json' --data "$login")
[ "$status" = 200 ] || fail "login as $OWNER_EMAIL answered $status: $(cat "$BODY")"
owner=$(jq -r .access_token "$BODY")

n=0
for agent in $AGENTS; do
    n=$((n + 1))
    key="SITE-$n"
    license=$(jq -n --arg key "$key" --arg name "Compose site $n ($agent)" \
        '{key: $key, name: $name, kind: "direct", check_interval_seconds: 120}')
    status=$(call POST /licenses "$owner" "$license")
    case "$status" in
        201) id=$(jq -r .id "$BODY"); say "created license $key" ;;
        409)
            status=$(call GET "/licenses?q=$key" "$owner")
            [ "$status" = 200 ] || fail "GET /licenses?q=$key answered $status: $(cat "$BODY")"
            id=$(jq -r --arg key "$key" '.items[] | select(.key == $key) | .id' "$BODY")
            say "reusing license $key"
            ;;
        *) fail "POST /licenses answered $status: $(cat "$BODY")" ;;
    esac
    [ -n "$id" ] || fail "no id for license $key"

    if [ "$n" = 2 ]; then
        settings=$(jq -n --arg to "$OWNER_EMAIL" '{enabled: true, inactivity_interval_seconds: 3600,
            notification_interval_seconds: 28800, recipients: [$to], notify_on_recovery: true}')
        status=$(call PUT "/licenses/$id/notification-settings" "$owner" "$settings")
        [ "$status" = 200 ] || fail "PUT notification-settings answered $status: $(cat "$BODY")"
        say "inactivity e-mails for $key go to $OWNER_EMAIL"
    fi

    case " $missing " in
        *" $agent "*) ;;
        *) continue ;;
    esac
    status=$(call POST "/licenses/$id/agent-tokens" "$owner" "{\"name\": \"compose $agent\"}")
    [ "$status" = 201 ] || fail "POST agent-tokens answered $status: $(cat "$BODY")"
    token=$(jq -r .token "$BODY")
    mkdir -p "$OUT_DIR/$agent"
    sed "s|^token = \"swa_SET_BY_BOOTSTRAP\"|token = \"$token\"|" "$TEMPLATE_DIR/$agent.toml" \
        > "$OUT_DIR/$agent/agent.toml.tmp"
    if grep -q SET_BY_BOOTSTRAP "$OUT_DIR/$agent/agent.toml.tmp" \
        || ! grep -q '^token = "swa_' "$OUT_DIR/$agent/agent.toml.tmp"; then
        fail "$TEMPLATE_DIR/$agent.toml needs the line: token = \"swa_SET_BY_BOOTSTRAP\""
    fi
    chmod 0600 "$OUT_DIR/$agent/agent.toml.tmp"
    if [ "$(id -u)" = 0 ]; then
        chown "$AGENT_UID:$AGENT_UID" "$OUT_DIR/$agent" "$OUT_DIR/$agent/agent.toml.tmp"
    fi
    mv "$OUT_DIR/$agent/agent.toml.tmp" "$OUT_DIR/$agent/agent.toml"
    say "wrote $OUT_DIR/$agent/agent.toml (license $key, a new agent token)"
done
say "done: open http://localhost:8080 and log in as $OWNER_EMAIL"
