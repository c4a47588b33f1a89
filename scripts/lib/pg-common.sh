# shellcheck shell=bash
# Variables set here are used by the scripts that source this file.
# shellcheck disable=SC2034
# Shared helpers for scripts/pg-up and scripts/pg-down (sourced, not executed).
#
# The throwaway cluster lives in one base directory ($PG_BASE):
#   $PG_BASE/data   the PostgreSQL data directory (PGDATA)
#   $PG_BASE/port   the TCP port chosen on first start (reused by reruns)
#   $PG_BASE/log    the server log (pg_ctl -l)
#   $PG_BASE/sock   the unix socket directory (unless its path is too long)
#   $PG_BASE/.lock  flock(1) lock so concurrent pg-up runs don't race
#
# $PG_BASE is ${STREAMWATCH_PG_DIR:-<repo>/target/pg}. When we run as root the
# server runs as the `postgres` OS user (initdb/postgres refuse to run as root),
# so that user must be able to traverse every parent directory. If the repo sits
# somewhere it cannot (e.g. under /root, mode 0700) and STREAMWATCH_PG_DIR was
# not given, the base directory falls back to
#   /var/tmp/streamwatch-pg-<first 12 hex of sha256(repo path)>
# which is stable per checkout, so reruns and scripts/pg-down find it again.

PG_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
PG_USER=postgres
PG_FIRST_PORT=55433

pg_log() { printf 'pg: %s\n' "$*" >&2; }
pg_die() { printf 'pg: error: %s\n' "$*" >&2; exit 1; }

pg_is_root() { [[ "$(id -u)" -eq 0 ]]; }

pg_repo_hash() { printf '%s' "$PG_REPO_ROOT" | sha256sum | cut -c1-12; }

# Run a PostgreSQL server-side command as the right OS user. As root that is
# `postgres` (cwd / so it does not complain about an unreadable cwd).
pg_as_owner() {
    if pg_is_root; then
        (cd / && runuser -u "$PG_USER" -- "$@")
    else
        "$@"
    fi
}

# Can the server's OS user reach (search) directory $1?
pg_user_can_traverse() {
    if pg_is_root; then
        runuser -u "$PG_USER" -- test -x "$1" 2>/dev/null
    else
        test -x "$1"
    fi
}

# Sets PG_BASE, PG_DATA, PG_PORT_FILE, PG_LOG, PG_SOCK. Creates nothing except
# (when the default location is used) the parent of the base dir, to probe it.
pg_resolve_dirs() {
    local base
    if [[ -n "${STREAMWATCH_PG_DIR:-}" ]]; then
        base="$STREAMWATCH_PG_DIR"
        if pg_is_root && id "$PG_USER" >/dev/null 2>&1; then
            mkdir -p "$(dirname "$base")"
            pg_user_can_traverse "$(dirname "$base")" \
                || pg_die "STREAMWATCH_PG_DIR=$base: user '$PG_USER' cannot traverse $(dirname "$base"); pick a directory it can reach (e.g. under /var/tmp)"
        fi
    else
        base="$PG_REPO_ROOT/target/pg"
        if pg_is_root && id "$PG_USER" >/dev/null 2>&1; then
            # Probe the nearest existing ancestor of target/ without creating
            # anything in a place we are going to abandon anyway.
            local probe="$PG_REPO_ROOT/target"
            [[ -d "$probe" ]] || probe="$PG_REPO_ROOT"
            if ! pg_user_can_traverse "$probe"; then
                base="/var/tmp/streamwatch-pg-$(pg_repo_hash)"
                pg_log "user '$PG_USER' cannot traverse $probe; using $base for the throwaway cluster"
            fi
        fi
    fi
    PG_BASE="$base"
    PG_DATA="$PG_BASE/data"
    PG_PORT_FILE="$PG_BASE/port"
    PG_LOG="$PG_BASE/log"
    # unix socket paths are limited to 107 bytes ("/.s.PGSQL.NNNNN.lock" = 20).
    PG_SOCK="$PG_BASE/sock"
    if (( ${#PG_SOCK} + 20 > 107 )); then
        PG_SOCK="/tmp/streamwatch-pg-$(pg_repo_hash)-sock"
    fi
}

# Sets PG_BIN to a directory holding initdb/pg_ctl/postgres, or returns 1.
# Prefers the major version matching an existing data dir, else the newest.
pg_find_bindir() {
    PG_BIN=""
    local d want=""
    if [[ -r "${PG_DATA:-/nonexistent}/PG_VERSION" ]]; then
        want="$(cat "$PG_DATA/PG_VERSION")"
        if [[ -x "/usr/lib/postgresql/$want/bin/pg_ctl" ]]; then
            PG_BIN="/usr/lib/postgresql/$want/bin"
            return 0
        fi
    fi
    d="$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1 || true)"
    if [[ -n "$d" ]]; then
        PG_BIN="$(dirname "$d")"
        return 0
    fi
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            PG_BIN="$d"
            return 0
        fi
    fi
    for d in initdb pg_ctl postgres; do
        command -v "$d" >/dev/null 2>&1 || return 1
    done
    PG_BIN="$(dirname "$(command -v pg_ctl)")"
}

# Port recorded in postmaster.pid (line 4) of a running cluster, else empty.
pg_pidfile_port() {
    [[ -r "$PG_DATA/postmaster.pid" ]] && sed -n 4p "$PG_DATA/postmaster.pid" | tr -d '[:space:]'
}

# Is the postmaster of $PG_DATA alive (pg_ctl status)? Needs PG_BIN.
pg_cluster_alive() {
    [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

# Does a server answer on 127.0.0.1:$1 ?
pg_answers() {
    local port="$1"
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 3
    elif [[ -n "${PG_BIN:-}" && -x "$PG_BIN/pg_isready" ]]; then
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 3
    else
        pg_port_in_use "$port"
    fi
}

# Is anything listening on 127.0.0.1:$1 ? (bash /dev/tcp; no ss/netstat needed)
pg_port_in_use() {
    # shellcheck disable=SC2016  # $1 expands in the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" >/dev/null 2>&1
}

pg_url() { printf 'postgres://postgres@127.0.0.1:%s/postgres' "$1"; }
