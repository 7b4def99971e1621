#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine with Rust installed:
#   1. installs what the tests need when it is missing (PostgreSQL and the
#      aiosmtpd SMTP sink, via apt);
#   2. starts a throw-away PostgreSQL cluster on loopback in a temp folder;
#   3. runs cargo fmt --check, cargo clippy -D warnings, and every test twice:
#      on SQLite, then on PostgreSQL;
#   4. runs the official RealWorld API collection (newman) against the real
#      binary, on SQLite and on PostgreSQL;
#   4. stops and removes the cluster, whatever happened.
# Usage: bash scripts/test.sh   (CI: .ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    # The OS image may delete downloaded .deb files between dpkg runs; an
    # empty post-invoke hook keeps a multi-package install working.
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o 'DPkg::Post-Invoke::=' install -y -qq "$@"
}

pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

free_port() {
    local port
    for port in $(seq "$1" $(($1 + 200))); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# --- PostgreSQL -------------------------------------------------------------
if ! PG_BIN=$(pg_bindir); then
    log "installing PostgreSQL"
    apt_install postgresql
    PG_BIN=$(pg_bindir)
fi

PG_DIR=$(mktemp -d /tmp/basalt-pg.XXXXXX)
PG_PORT=$(free_port 55432)
# initdb refuses to run as root; run the cluster as the unprivileged
# `postgres` user the package creates (or as ourselves when not root).
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    chown postgres "$PG_DIR"
    PG_AS=(runuser -u postgres --)
else
    PG_AS=()
fi

stop_postgres() {
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap stop_postgres EXIT

log "starting PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
"${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
# Durability off: a throw-away cluster for tests only, much faster.
"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$PG_DIR/server.log"; exit 1; }
export PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"

# --- SMTP sink for the mail tests (started by basalt-testkit's smtp.rs) -------
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    log "installing aiosmtpd"
    apt_install python3-aiosmtpd
fi

# --- checks and tests ---------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests on SQLite"
cargo test --workspace --locked

log "tests on PostgreSQL"
TEST_POSTGRES_URL="$PG_URL" cargo test --workspace --locked
# Proof that the PostgreSQL pass really ran against PostgreSQL.
created=$("$PG_BIN/psql" "$PG_URL" -Atc "SELECT count(*) FROM pg_database WHERE datname LIKE 'basalt_test_%'")
if [ "$created" -lt 10 ]; then
    echo "expected the PostgreSQL pass to create test databases, found $created" >&2
    exit 1
fi
echo "PostgreSQL pass used $created fresh databases"

# --- RealWorld conformance: the official Postman collection, via newman ------
COLLECTION="$(cd .. && pwd)/shared/realworld/Conduit.postman_collection.json"
if [ ! -f "$COLLECTION" ]; then
    echo "missing $COLLECTION (the shared/ folder beside the clone)" >&2
    exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
    log "installing Node.js and npm"
    apt_install nodejs npm
fi
NEWMAN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/newman"
if [ ! -x "$NEWMAN_DIR/node_modules/.bin/newman" ]; then
    log "installing newman"
    npm install --prefix "$NEWMAN_DIR" --no-audit --no-fund --loglevel=error newman@6 >/dev/null
fi
cargo build -p basalt --locked
BASALT_BIN="${CARGO_TARGET_DIR:-target}/debug/basalt"

# Runs the collection against a fresh server on the given database URL.
run_realworld() {
    local name=$1 database_url=$2 port dir pid stamp status=0
    port=$(free_port 18000)
    dir=$(mktemp -d /tmp/basalt-realworld.XXXXXX)
    [ -n "$database_url" ] || database_url="sqlite://$dir/basalt.db"
    BASALT_LISTEN="127.0.0.1:$port" BASALT_DATA_DIR="$dir" BASALT_DATABASE_URL="$database_url" \
        BASALT_LOG_LEVEL=warn "$BASALT_BIN" serve >"$dir/server.log" 2>&1 &
    pid=$!
    # Ready once it accepts connections (migrations run before it listens).
    for _ in $(seq 1 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.2
    done
    stamp="$(date +%s%N)"
    log "RealWorld collection on $name"
    "$NEWMAN_DIR/node_modules/.bin/newman" run "$COLLECTION" --delay-request 1 \
        --global-var "APIURL=http://127.0.0.1:$port/api" \
        --global-var "USERNAME=u$stamp" --global-var "EMAIL=u$stamp@example.com" \
        --global-var "PASSWORD=Correct-Horse-Battery-9" || status=$?
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
        echo "--- server log ($name) ---"; tail -50 "$dir/server.log"
    fi
    rm -rf "$dir"
    return "$status"
}
RW_DB="basalt_realworld_$$"
"$PG_BIN/psql" "$PG_URL" -qc "CREATE DATABASE $RW_DB" >/dev/null
run_realworld SQLite ""
run_realworld PostgreSQL "postgres://postgres@127.0.0.1:$PG_PORT/$RW_DB"

log "all checks passed on SQLite and PostgreSQL"
