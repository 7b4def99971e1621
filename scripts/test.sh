#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine with Rust installed:
#   1. installs what the tests need when it is missing (PostgreSQL, Redis,
#      RabbitMQ and the aiosmtpd SMTP sink, via apt; PyPI localstripe and
#      stripe for the shop's payment tests, into a venv: scripts/lib/shop-venv.sh);
#   2. starts a throw-away PostgreSQL cluster, Redis and RabbitMQ on loopback;
#   3. runs cargo fmt --check, cargo clippy -D warnings, cargo deny
#      (scripts/deny.sh), the deployment files' own linters (actionlint,
#      hadolint, promtool; Compose, Kubernetes and systemd validators in
#      scripts/deploy/manifests.sh), and every test twice:
#      on the embedded stack (SQLite, in-process cache, rate limits and event
#      bus), then on the distributed one (PostgreSQL, Redis, RabbitMQ);
#   4. runs the official RealWorld API collection (newman), schemathesis
#      (scripts/schemathesis.sh) and third-party GraphQL clients
#      (scripts/graphql-clients.sh) and the chat protocol spoken by PyPI
#      websockets (scripts/chat-clients.sh) against the real binary, on both stacks;
#   5. proves the monitoring against a real Basalt (scripts/deploy/observability.sh:
#      Prometheus scrapes it, every alert rule loads, every dashboard query has data);
#   6. runs the cluster proof, scripts/cluster-test.sh (three nodes behind
#      the shipped nginx configuration, with servers of its own);
#   7. stops and removes the servers, whatever happened.
# Usage: bash scripts/test.sh   (CI: .ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/lib/redis.sh
source scripts/lib/redis.sh
# shellcheck source=scripts/lib/rabbitmq.sh
source scripts/lib/rabbitmq.sh
# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=scripts/lib/toolchain.sh
source scripts/lib/toolchain.sh
# shellcheck source=scripts/lib/shop-venv.sh
source scripts/lib/shop-venv.sh
use_pinned_toolchain "$PWD"

log() { printf '\n==> %s\n' "$*"; }

# --- PostgreSQL -------------------------------------------------------------
if ! PG_BIN=$(pg_bindir); then
    log "installing PostgreSQL"
    apt_install postgresql
    PG_BIN=$(pg_bindir)
fi

PG_DIR=$(mktemp -d /tmp/basalt-pg.XXXXXX)
alloc_port PG_PORT 25432
REDIS_DIR=$(mktemp -d /tmp/basalt-redis.XXXXXX)
RABBITMQ_DIR=$(mktemp -d /tmp/basalt-rabbitmq.XXXXXX)
EPMD_WAS_RUNNING=$(pgrep -x epmd >/dev/null && echo yes || echo no)
stop_servers() {
    rabbitmq_stop "$RABBITMQ_DIR"
    rm -rf "$RABBITMQ_DIR"
    # The Erlang port mapper the broker started, unless it was there before.
    [ "$EPMD_WAS_RUNNING" = yes ] || pkill -x epmd 2>/dev/null || true
    pg_stop "$PG_DIR"
    rm -rf "$PG_DIR"
    redis_stop "$REDIS_DIR"
    rm -rf "$REDIS_DIR"
}
trap stop_servers EXIT

log "starting PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
pg_start "$PG_DIR" "$PG_PORT"
export PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"

# --- Redis (the Redis tests also start private servers of their own) ---------
if ! command -v redis-server >/dev/null 2>&1; then
    log "installing Redis"
    apt_install redis-server
fi
alloc_port REDIS_PORT 26379
log "starting Redis $(redis-server --version | awk '{print $3}' | tr -d v=) on 127.0.0.1:$REDIS_PORT"
redis_start "$REDIS_DIR" "$REDIS_PORT"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

# --- RabbitMQ ------------------------------------------------------------------
if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    log "installing RabbitMQ"
    apt_install rabbitmq-server
fi
alloc_port RABBITMQ_PORT 25672
alloc_port RABBITMQ_DIST_PORT 25172
log "starting RabbitMQ on 127.0.0.1:$RABBITMQ_PORT"
rabbitmq_start "$RABBITMQ_DIR" "$RABBITMQ_PORT" "$RABBITMQ_DIST_PORT"
export AMQP_URL="amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT/%2f"

# --- SMTP sink for the mail tests (started by basalt-testkit's smtp.rs) -------
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    log "installing aiosmtpd"
    apt_install python3-aiosmtpd
fi

# --- the shop's payment fakes: PyPI localstripe and stripe, in a venv ------------
# (basalt-testkit's stripe.rs starts a localstripe per test; TEST_SHOP_PYTHON
# names the venv's interpreter). Debian's python3 needs python3-venv for it.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    log "installing python3-venv"
    apt_install python3-venv
fi
shop_venv

# --- checks and tests ---------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "supply chain: cargo deny (licences, bans, sources)"
bash scripts/deny.sh

log "deployment files: the CI workflow (actionlint), the Dockerfile (hadolint), alert rules (promtool)"
bash scripts/deploy/workflow.sh
bash scripts/deploy/hadolint.sh
bash scripts/deploy/observability.sh --rules-only

log "tests on SQLite"
cargo test --workspace --locked

log "tests on PostgreSQL, Redis and RabbitMQ"
TEST_POSTGRES_URL="$PG_URL" TEST_REDIS_URL="$REDIS_URL" TEST_AMQP_URL="$AMQP_URL" \
    cargo test --workspace --locked
# Proof that the PostgreSQL pass really ran against PostgreSQL.
created=$("$PG_BIN/psql" "$PG_URL" -Atc "SELECT count(*) FROM pg_database WHERE datname LIKE 'basalt_test_%'")
if [ "$created" -lt 10 ]; then
    echo "expected the PostgreSQL pass to create test databases, found $created" >&2
    exit 1
fi
echo "PostgreSQL pass used $created fresh databases"
# ...and through Redis: each app of that pass has a key prefix of its own.
prefixes=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'test-*' | cut -d: -f1 | sort -u | wc -l)
if [ "$prefixes" -lt 10 ]; then
    echo "expected the PostgreSQL pass to use Redis, found keys of $prefixes apps" >&2
    exit 1
fi
echo "... and Redis, with keys of $prefixes apps"
# ...and RabbitMQ: each app declares its own consumer queues.
RABBITMQ_AS=(); [ "$(id -u)" -ne 0 ] || RABBITMQ_AS=(runuser -u rabbitmq --)
queues=$("${RABBITMQ_AS[@]}" env HOME="$RABBITMQ_DIR" /usr/lib/rabbitmq/bin/rabbitmqctl \
    -n "$(rabbitmq_node "$RABBITMQ_DIR")" list_queues -q name 2>/dev/null | grep -c '^test-' || true)
if [ "$queues" -lt 10 ]; then
    echo "expected the PostgreSQL pass to use RabbitMQ, found queues of $queues apps" >&2
    exit 1
fi
echo "... and RabbitMQ, with the queues of $queues apps"

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

# --- the deployment files, checked by their own tools (and the binary's config)
log "deployment manifests: Compose, Kubernetes, systemd"
BASALT_BIN="$BASALT_BIN" bash scripts/deploy/manifests.sh

# Runs the collection against a fresh server on the given database URL.
run_realworld() {
    local name=$1 database_url=$2 redis_url=${3:-} amqp_url=${4:-} port dir pid stamp status=0
    alloc_port port 18000
    dir=$(mktemp -d /tmp/basalt-realworld.XXXXXX)
    [ -n "$database_url" ] || database_url="sqlite://$dir/basalt.db"
    env BASALT_LISTEN="127.0.0.1:$port" BASALT_DATA_DIR="$dir" BASALT_DATABASE_URL="$database_url" \
        ${redis_url:+"BASALT_REDIS_URL=$redis_url"} ${amqp_url:+"BASALT_AMQP_URL=$amqp_url"} BASALT_LOG_LEVEL=warn "$BASALT_BIN" serve >"$dir/server.log" 2>&1 &
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
run_realworld "PostgreSQL, Redis and RabbitMQ" "postgres://postgres@127.0.0.1:$PG_PORT/$RW_DB" "$REDIS_URL" "$AMQP_URL"

# --- schemathesis: the OpenAPI document against the real binary ---------------
# It installs into a virtual environment of its own; Debian's python3 needs
# python3-venv for that.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    log "installing python3-venv"
    apt_install python3-venv
fi
ST_DB="basalt_schemathesis_$$"
"$PG_BIN/psql" "$PG_URL" -qc "CREATE DATABASE $ST_DB" >/dev/null
BASALT_BIN="$BASALT_BIN" bash scripts/schemathesis.sh SQLite ""
BASALT_BIN="$BASALT_BIN" bash scripts/schemathesis.sh "PostgreSQL, Redis and RabbitMQ" \
    "postgres://postgres@127.0.0.1:$PG_PORT/$ST_DB" "$REDIS_URL" "$AMQP_URL"

# --- third-party GraphQL clients: graphql-js and gql against the real binary --
GC_DB="basalt_graphql_clients_$$"
"$PG_BIN/psql" "$PG_URL" -qc "CREATE DATABASE $GC_DB" >/dev/null
BASALT_BIN="$BASALT_BIN" bash scripts/graphql-clients.sh SQLite ""
BASALT_BIN="$BASALT_BIN" bash scripts/graphql-clients.sh "PostgreSQL, Redis and RabbitMQ" \
    "postgres://postgres@127.0.0.1:$PG_PORT/$GC_DB" "$REDIS_URL" "$AMQP_URL"

# --- the chat protocol from outside: PyPI websockets against the real binary ----
CC_DB="basalt_chat_clients_$$"
"$PG_BIN/psql" "$PG_URL" -qc "CREATE DATABASE $CC_DB" >/dev/null
BASALT_BIN="$BASALT_BIN" bash scripts/chat-clients.sh SQLite ""
BASALT_BIN="$BASALT_BIN" bash scripts/chat-clients.sh "PostgreSQL, Redis and RabbitMQ" \
    "postgres://postgres@127.0.0.1:$PG_PORT/$CC_DB" "$REDIS_URL" "$AMQP_URL"

# --- monitoring: Prometheus scrapes a real Basalt, every dashboard query has data
OB_DB="basalt_observability_$$"
"$PG_BIN/psql" "$PG_URL" -qc "CREATE DATABASE $OB_DB" >/dev/null
log "observability on PostgreSQL, Redis and RabbitMQ"
BASALT_BIN="$BASALT_BIN" bash scripts/deploy/observability.sh \
    "postgres://postgres@127.0.0.1:$PG_PORT/$OB_DB" "$REDIS_URL" "$AMQP_URL"

# --- the cluster proof: three nodes behind the shipped nginx configuration ----
log "cluster test (three nodes behind nginx, PostgreSQL, Redis, RabbitMQ)"
BASALT_BIN="$BASALT_BIN" bash scripts/cluster-test.sh

log "all checks passed: both stacks (SQLite embedded; PostgreSQL with Redis and RabbitMQ) and the cluster"
