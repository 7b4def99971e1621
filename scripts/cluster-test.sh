#!/usr/bin/env bash
# The scale-out proof: three Basalt nodes behind the nginx gateway of
# deploy/nginx/, on PostgreSQL, Redis and RabbitMQ, all on loopback in a
# temporary folder. Everything is checked through the gateway (over TLS, with
# a self-signed certificate made here):
#   0. the gateway itself: TLS, HTTP->HTTPS, request ids, body limit, edge limit
#   1. a session made on one node works on the others; sign-out is seen by all
#   2. a sign-in rate limit of N per minute holds across the three nodes together
#   3. a write through one node is read fresh through every other (cache)
#   4. 1,000 jobs enqueued across the nodes give exactly 1,000 effects, none twice
#   5. 1,000 domain events, RabbitMQ restarted in the middle, all reach the
#      consumer, each effect once
#   5b. chat: two clients on different nodes chat (fan-out through Redis);
#      a node is killed with SIGKILL in the middle of a burst, its clients
#      reconnect through the gateway and resume: every acknowledged message
#      delivered once, in order, none posted twice (scripts/cluster/chat_check.py)
#   6. kill -9 of a node during 60 s of mixed load: no acknowledged write lost,
#      fewer than 0.1 % of requests failed
#   7. Redis stopped: reads still served, /readyz degraded, rate limits in their
#      fail mode (local); Redis back: everything recovers without restarts
#   8. chat sockets opened through the gateway before step 5 and idle since
#      (no frame, no ping of their own) outlive nginx's 60 s read timeout,
#      kept open by the server's pings, and then receive a message (a socket
#      on a node killed meanwhile may close, only at the kill)
# One PASS/FAIL line per check, with its numbers; exit 1 if any failed.
#
# Usage: bash scripts/cluster-test.sh
#   BASALT_BIN     the binary (default ${CARGO_TARGET_DIR:-target}/debug/basalt,
#                  built with `cargo build -p basalt` when missing)
#   CLUSTER_KEEP=1 keep the temporary folder (logs, maildir, state) afterwards
# Installs what is missing with apt (nginx, redis-server, rabbitmq-server,
# postgresql, python3-aiosmtpd, gettext-base), and the chat check's PyPI
# websockets into a cache venv (scripts/lib/chat-venv.sh). Runs in about 2-3 minutes on
# 2 cores (every wait is bounded; the whole stays well under 6 minutes).
#
# For speed, the nodes hash passwords with argon2id at 1 MiB and 1 iteration
# instead of the OWASP 19 MiB x 2 (1,000+ sign-ups on 2 cores), and allow
# 100,000 sign-ups per address per hour (step 4 signs up 1,000 accounts from
# one client address). The sign-in limit is N = 20 per address per minute.
# The chat check's sender sends far more than the default 120 messages per
# minute.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/rabbitmq.sh
source scripts/lib/rabbitmq.sh
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/lib/redis.sh
source scripts/lib/redis.sh
# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=scripts/lib/chat-venv.sh
source scripts/lib/chat-venv.sh

PYTHON=/usr/bin/python3 # Debian's, which has aiosmtpd (the default may be pyenv's)
LIMIT=20                # sign-ins per client address per minute (check 2)
T_START=$(date +%s)

log() { printf '\n==> [%3ds] %s\n' "$(($(date +%s) - T_START))" "$*"; }

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s until it
# succeeds; gives up at once when it returns 99 (what it waits for died).
wait_until() {
    local seconds=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + seconds))
    local status
    while true; do
        status=0
        "$@" >/dev/null 2>&1 || status=$?
        [ "$status" -ne 0 ] || return 0
        if [ "$status" -eq 99 ]; then # will never happen (a process died)
            echo "gave up waiting for $what" >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "timed out after ${seconds}s waiting for $what" >&2
            return 1
        fi
        sleep 0.2
    done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- what the cluster needs ---------------------------------------------------------
missing=()
# (Debian's nginx; its service is not used: nginx runs here as our child.)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
pg_bindir >/dev/null || missing+=(postgresql)
"$PYTHON" -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
command -v envsubst >/dev/null 2>&1 || missing+=(gettext-base)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
chat_venv
PG_BIN=$(pg_bindir)

BASALT_BIN=${BASALT_BIN:-${CARGO_TARGET_DIR:-target}/debug/basalt}
if [ ! -x "$BASALT_BIN" ]; then
    log "building basalt"
    cargo build -p basalt --locked
fi
BASALT_BIN=$(cd "$(dirname "$BASALT_BIN")" && pwd)/$(basename "$BASALT_BIN")

# --- the temporary folder, and stopping everything whatever happens -----------------
W=$(mktemp -d /tmp/basalt-cluster.XXXXXX)
chmod 755 "$W" # the postgres and rabbitmq users must reach their folders
# (not mail/: aiosmtpd makes the Maildir only when the folder is missing)
mkdir -p "$W/state" "$W/tls" "$W/nginx/conf" "$W/nginx/logs" "$W/nginx/temp"
NODE_PID=("" "" "" "")
NGINX_PID="" SMTP_PID="" BG_PID="" IDLE_PID="" EPMD_PORT="" FAILED=() PASSED=()

stop_pid() { # stop_pid PID: TERM, then KILL after 5 s
    local pid=$1 _
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$? i
    set +e
    trap - EXIT INT TERM
    if [ "$status" -ne 0 ] || [ "${#FAILED[@]}" -gt 0 ]; then
        for i in 1 2 3; do
            [ -f "$W/node$i/server.log" ] || continue
            echo "--- node$i log (last 15 lines, cut at 400 characters) ---"
            tail -15 "$W/node$i/server.log" | cut -c1-400
        done
        echo "--- nginx error log (last 15 lines) ---"
        tail -15 "$W/nginx/logs/error.log" 2>/dev/null | cut -c1-400
    fi
    stop_pid "$BG_PID"
    stop_pid "$IDLE_PID"
    for i in 1 2 3; do [ -z "${NODE_PID[$i]}" ] || kill -TERM "${NODE_PID[$i]}" 2>/dev/null; done
    for i in 1 2 3; do stop_pid "${NODE_PID[$i]}"; done
    stop_pid "$NGINX_PID"
    stop_pid "$SMTP_PID"
    redis_stop "$W/redis"
    rabbitmq_stop "$W/rabbitmq"
    # The broker's own Erlang port mapper (on a port of its own, so that no
    # other broker on this machine is touched).
    [ -z "$EPMD_PORT" ] || epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1
    pg_stop "$W/pg"
    if [ "${CLUSTER_KEEP:-0}" = 1 ]; then
        echo "kept $W"
    else
        rm -rf "$W"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL, Redis, RabbitMQ, the SMTP sink ------------------------------------------
alloc_port PG_PORT 26432
log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
pg_start "$W/pg" "$PG_PORT"
"$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'CREATE DATABASE basalt' >/dev/null

alloc_port REDIS_PORT 26479
log "starting Redis on 127.0.0.1:$REDIS_PORT"
redis_start "$W/redis" "$REDIS_PORT"

alloc_port AMQP_PORT 26672
alloc_port AMQP_DIST_PORT 26172
alloc_port EPMD_PORT 24369
export ERL_EPMD_PORT=$EPMD_PORT
log "starting RabbitMQ on 127.0.0.1:$AMQP_PORT"
rabbitmq_start "$W/rabbitmq" "$AMQP_PORT" "$AMQP_DIST_PORT"

alloc_port SMTP_PORT 22525
"$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$W/mail" \
    >"$W/smtp.log" 2>&1 &
SMTP_PID=$!
wait_until 15 "the SMTP sink" port_open "$SMTP_PORT"

# --- three Basalt nodes ---------------------------------------------------------------
alloc_port GW_HTTP_PORT 28080
alloc_port GW_PORT 28443
GATEWAY="https://127.0.0.1:$GW_PORT"
NODE_PORT=("" "" "" "")
for i in 1 2 3; do alloc_port "NODE_PORT[$i]" $((28080 + i * 10)); done

start_node() { # start_node I: starts node I (again: same port, same folder)
    local i=$1
    local inherited=() name
    mkdir -p "$W/node$i"
    # Only the settings below: Basalt refuses unknown BASALT_* variables, and
    # the caller's (BASALT_BIN, say) are not the node's.
    for name in $(compgen -e); do
        [[ "$name" != BASALT_* ]] || inherited+=(-u "$name")
    done
    env "${inherited[@]}" BASALT_LISTEN="127.0.0.1:${NODE_PORT[$i]}" \
        BASALT_DATA_DIR="$W/node$i" \
        BASALT_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/basalt" \
        BASALT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
        BASALT_REDIS__RATE_LIMIT_FAIL_MODE=local \
        BASALT_AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f" \
        BASALT_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" \
        BASALT_TRUSTED_PROXIES=127.0.0.1/32 \
        BASALT_PUBLIC_URL="$GATEWAY" \
        BASALT_LOG_FORMAT=json \
        BASALT_LOG_LEVEL=warn \
        BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE=$LIMIT \
        BASALT_IDENTITY__RATE_LIMITS__REGISTER_PER_IP_PER_HOUR=100000 \
        BASALT_IDENTITY__PASSWORDS__ARGON2_MEMORY_KIB=1024 \
        BASALT_IDENTITY__PASSWORDS__ARGON2_ITERATIONS=1 \
        BASALT_CHAT__RATE_LIMITS__SENDS_PER_MINUTE=1000000 \
        "$BASALT_BIN" serve --role all >>"$W/node$i/server.log" 2>&1 &
    NODE_PID[i]=$!
}
# metric I NAME: the value of an unlabelled metric on node I.
metric() {
    curl -fsS "http://127.0.0.1:${NODE_PORT[$1]}/metrics" 2>/dev/null | awk -v m="$2" '$1 == m { print $2 }'
}
node_ready() {
    kill -0 "${NODE_PID[$1]}" 2>/dev/null || return 99
    curl -fsS "http://127.0.0.1:${NODE_PORT[$1]}/readyz" | grep -q '"ready"'
}

log "starting 3 Basalt nodes on ports ${NODE_PORT[*]:1} ($BASALT_BIN)"
# The first one alone applies the migrations; the others find them done.
start_node 1
wait_until 90 "node1 to be ready" node_ready 1
start_node 2
start_node 3
wait_until 60 "node2 to be ready" node_ready 2
wait_until 60 "node3 to be ready" node_ready 3

# --- the gateway: THE config of deploy/nginx/, rendered for loopback -----------------
log "starting nginx: $GATEWAY -> the 3 nodes"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$W/tls/key.pem" -out "$W/tls/cert.pem" 2>/dev/null
# The test clients send from 127.0.0.0/24 and are exempt from the edge limit
# (the load steps send far more than 30 requests/s from one address); the
# gateway check proves that limit from 127.0.1.1, which is not exempt.
GATEWAY_UPSTREAMS="127.0.0.1:${NODE_PORT[1]} 127.0.0.1:${NODE_PORT[2]} 127.0.0.1:${NODE_PORT[3]}" \
    GATEWAY_PUBLIC_URL="$GATEWAY" \
    GATEWAY_HTTP_LISTEN="127.0.0.1:$GW_HTTP_PORT" \
    GATEWAY_HTTPS_LISTEN="127.0.0.1:$GW_PORT" \
    GATEWAY_TLS_CERT="$W/tls/cert.pem" GATEWAY_TLS_KEY="$W/tls/key.pem" \
    GATEWAY_LOG_DIR="$W/nginx/logs" \
    GATEWAY_EDGE_EXEMPT="127.0.0.0/24" \
    bash deploy/nginx/render.sh "$W/nginx/conf"
NGINX_ARGS=(-p "$W/nginx" -c "$W/nginx/conf/nginx.conf" -e "$W/nginx/logs/error.log")
"$NGINX" "${NGINX_ARGS[@]}" -t -q -g "pid $W/nginx/nginx.pid;"
"$NGINX" "${NGINX_ARGS[@]}" -g "daemon off; pid $W/nginx/nginx.pid;" &
NGINX_PID=$!
wait_until 15 "nginx" port_open "$GW_PORT"

export CLUSTER_GATEWAY="$GATEWAY" CLUSTER_HTTP_GATEWAY="http://127.0.0.1:$GW_HTTP_PORT" \
    CLUSTER_CA="$W/tls/cert.pem" CLUSTER_ACCESS_LOG="$W/nginx/logs/basalt-access.log" \
    CLUSTER_MAILDIR="$W/mail" CLUSTER_STATE="$W/state" CLUSTER_RUN="r$T_START" \
    CLUSTER_NODES="127.0.0.1:${NODE_PORT[1]},127.0.0.1:${NODE_PORT[2]},127.0.0.1:${NODE_PORT[3]}"

# check NAME SUBCOMMAND [ARGS...]: runs one check of checks.py, records its result.
check() {
    local name=$1 status=0
    shift
    timeout 300 "$PYTHON" scripts/cluster/checks.py "$@" --name "$name" |
        tee -a "$W/state/verdicts" || status=$?
    if [ "$status" -eq 0 ]; then
        PASSED+=("$name")
    else
        [ "$status" -ne 124 ] || echo "FAIL $name: no verdict within 300 s" | tee -a "$W/state/verdicts"
        FAILED+=("$name")
    fi
}
# setup NAME SUBCOMMAND [ARGS...]: a preparation step; its failure fails NAME.
setup() {
    local name=$1
    shift
    if timeout 120 "$PYTHON" scripts/cluster/checks.py "$@" --name "$name (setup)"; then
        return 0
    fi
    echo "FAIL $name: its setup failed" >>"$W/state/verdicts"
    FAILED+=("$name")
    return 1
}

log "0. the gateway"
check gateway gateway --source 127.0.0.10 --limited-source 127.0.1.1

log "1. sessions across nodes"
check sessions sessions --source 127.0.0.11

log "2. a rate limit across nodes"
check ratelimit ratelimit --source 127.0.0.12 --limit "$LIMIT"

log "3. cache invalidation across nodes"
check cache cache --source 127.0.0.13

log "4. 1,000 jobs"
check jobs jobs --source 127.0.0.14 --count 1000 --clients 8 --timeout 120

# The idle sockets of step 8, held from here to the end.
"$CHAT_PYTHON" scripts/cluster/chat_check.py --idle --source 127.0.0.21 --name "chat idle" \
    >"$W/state/idle.out" 2>&1 &
IDLE_PID=$!
wait_until 30 "the idle chat sockets" test -s "$W/state/idle.ready" || true

log "5. 1,000 domain events, RabbitMQ restarted in the middle"
if setup events events-setup --source 127.0.0.15; then
    # 40 articles/s: about 25 s of publishing, the broker restarted about
    # 8 s in, down for about 10 s; articles go on being published throughout.
    timeout 180 "$PYTHON" scripts/cluster/load.py publish 1000 --rate 40 --clients 8 --source 127.0.0.15 \
        --author "$W/state/author.json" --progress "$W/state/publish.progress" \
        --out "$W/state/publish.json" &
    BG_PID=$!
    published() { [ "$(cat "$W/state/publish.progress" 2>/dev/null || echo 0)" -ge "$1" ]; }
    wait_until 60 "300 articles" published 300 || true
    restarted_after="$(cat "$W/state/publish.progress" 2>/dev/null || echo 0) articles"
    t0=$(date +%s.%N)
    rabbitmq_stop "$W/rabbitmq"
    # Every node notices (its relay and consumers lost the connection) while
    # the events pile up in the outbox.
    broker_down_everywhere() {
        local i
        for i in 1 2 3; do [ "$(metric "$i" basalt_broker_up)" = 0 ] || return 1; done
    }
    seen="seen down by 3/3 nodes"
    wait_until 20 "every node to see the broker down" broker_down_everywhere ||
        seen="NOT seen down by every node"
    sleep 3
    held=$(metric 1 basalt_outbox_pending)
    rabbitmq_start "$W/rabbitmq" "$AMQP_PORT" "$AMQP_DIST_PORT"
    down=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
    echo "RabbitMQ restarted after $restarted_after: down ${down} s, $seen," \
        "${held:-?} events waiting in the outbox; then $(cat "$W/state/publish.progress") published"
    wait "$BG_PID" || true
    BG_PID=""
    check events events --count 1000 --timeout 150 \
        --restarted-after "$restarted_after" --down-seconds "$down" --held "${held:-?}"
fi

log "5b. chat across nodes, a node killed with SIGKILL mid-burst"
status=0
timeout 120 "$CHAT_PYTHON" scripts/cluster/chat_check.py --victim-pid "${NODE_PID[3]}" \
    --victim node3 --other node1 --count 3000 --source 127.0.0.20 --name chat |
    tee -a "$W/state/verdicts" || status=$?
if [ "$status" -eq 0 ]; then PASSED+=(chat); else FAILED+=(chat); fi
# The check killed node3 (when it got that far): it comes back for the next steps.
if ! kill -0 "${NODE_PID[3]}" 2>/dev/null; then
    wait "${NODE_PID[3]}" 2>/dev/null || true
    start_node 3
    wait_until 30 "node3 to be ready again" node_ready 3 || true
    echo "node3 restarted (pid ${NODE_PID[3]})"
fi

log "6. kill -9 of a node under 60 s of mixed load"
if setup kill kill-setup --source 127.0.0.16; then
    rm -f "$W/state/mixed.started"
    timeout 180 "$PYTHON" scripts/cluster/load.py mixed 60 --clients 8 --source 127.0.0.16 \
        --users "$W/state/writers.json" --seed "$W/state/seed.json" \
        --started "$W/state/mixed.started" --out "$W/state/mixed.json" &
    BG_PID=$!
    wait_until 30 "the load to start" test -s "$W/state/mixed.started"
    started=$(cat "$W/state/mixed.started")
    sleep_until() { # seconds after the load started
        local left
        left=$(awk -v s="$started" -v d="$1" -v now="$(date +%s.%N)" \
            'BEGIN { printf "%.2f", s + d - now }')
        [[ "$left" == -* ]] || sleep "$left"
    }
    sleep_until 20
    kill -9 "${NODE_PID[2]}"
    date +%s.%N >"$W/state/killed.at"
    wait "${NODE_PID[2]}" 2>/dev/null || true
    echo "node2 (pid ${NODE_PID[2]}) killed with SIGKILL"
    sleep_until 40
    start_node 2
    wait_until 30 "node2 to be ready again" node_ready 2 || true
    date +%s.%N >"$W/state/restarted.at"
    echo "node2 restarted (pid ${NODE_PID[2]})"
    wait "$BG_PID" || true
    BG_PID=""
    check "kill -9" kill --victim node2
fi

log "7. Redis stopped, then back"
pids_before="${NODE_PID[*]}"
redis_stop "$W/redis"
check "redis down" redis-down --source 127.0.0.17 --limit-source 127.0.0.18 --limit "$LIMIT"
redis_start "$W/redis" "$REDIS_PORT"
# Recovery must need no restart: the same node processes, all still alive.
gone=""
for i in 1 2 3; do kill -0 "${NODE_PID[$i]}" 2>/dev/null || gone+="node$i "; done
[ "${NODE_PID[*]}" = "$pids_before" ] || gone+="(restarted) "
check "redis back" redis-back --source 127.0.0.17 --limit-source 127.0.0.19 --limit "$LIMIT" \
    --timeout 15 --gone "$gone"

log "8. idle chat sockets through the gateway"
touch "$W/state/idle.stop"
status=0
wait "$IDLE_PID" || status=$?
IDLE_PID=""
tee -a "$W/state/verdicts" <"$W/state/idle.out"
if [ "$status" -eq 0 ]; then PASSED+=("chat idle"); else FAILED+=("chat idle"); fi

# --- verdict ------------------------------------------------------------------------
log "cluster test done in $(($(date +%s) - T_START)) s"
grep -E '^(PASS|FAIL) ' "$W/state/verdicts" || true
echo "cluster: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[ "${#FAILED[@]}" -eq 0 ]
