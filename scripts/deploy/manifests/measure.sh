#!/usr/bin/env bash
# Measures what the Kubernetes resource requests and limits
# (deploy/k8s/base/*.yaml) are based on: the memory (VmRSS, peak VmHWM) and
# CPU of a release build run as the manifests run it, one API node
# (BASALT_ROLE=api) and one worker (BASALT_ROLE=worker, 4 job workers) on
# PostgreSQL, Redis and RabbitMQ, all on loopback:
#   1. idle just after start;
#   2. USERS sign-ups (argon2id hashing; each enqueues a verification mail,
#      which the worker sends: jobs, the outbox relay, events);
#   3. a sign-in storm: wrk POST /api/auth/token (bench/wrk/token.lua);
#   4. a read load: wrk GET /api/articles (the RealWorld list);
#   5. idle again.
# Memory is sampled every 0.5 s; CPU is the process's utime+stime over each
# phase (cores = CPU seconds / wall seconds). Not part of the test command:
# run it by hand, and update the figures in the manifests' comments.
#
# Usage: bash scripts/deploy/manifests/measure.sh [RELEASE_BINARY]
#   (default ${CARGO_TARGET_DIR:-target}/release/basalt; build it with
#   `cargo build --release -p basalt`). Needs PostgreSQL, redis-server,
#   rabbitmq-server and wrk (apt). Environment: USERS (default 100),
#   DURATION (seconds per wrk phase, default 20).
set -euo pipefail
cd "$(dirname "$0")/../../.."
# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/lib/redis.sh
source scripts/lib/redis.sh
# shellcheck source=scripts/lib/rabbitmq.sh
source scripts/lib/rabbitmq.sh

bin=${1:-${CARGO_TARGET_DIR:-target}/release/basalt}
[ -x "$bin" ] || { echo "no release binary at $bin (cargo build --release -p basalt)" >&2; exit 1; }
USERS=${USERS:-100}
DURATION=${DURATION:-20}
PASSWORD="correct horse battery staple"

W=$(mktemp -d /tmp/basalt-measure.XXXXXX)
chmod 0755 "$W"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -z "${sampler:-}" ] || kill "$sampler" 2>/dev/null || true
    redis_stop "$W/redis" || true
    rabbitmq_stop "$W/rabbitmq" || true
    pg_stop "$W/pg" || true
    rm -rf "$W"
}
trap cleanup EXIT

alloc_port PG 26500
alloc_port REDIS 26600
alloc_port AMQP 26700
alloc_port DIST 26800
alloc_port API 26900
alloc_port WORKER 27000
pg_start "$W/pg" "$PG"
$(pg_as) "$(pg_bindir)/psql" -q -h 127.0.0.1 -p "$PG" -U postgres -c 'CREATE DATABASE basalt' postgres
redis_start "$W/redis" "$REDIS"
mkdir -p "$W/rabbitmq"
[ "$(id -u)" -ne 0 ] || chown rabbitmq "$W/rabbitmq"
rabbitmq_start "$W/rabbitmq" "$AMQP" "$DIST"

common=(
    BASALT_DATABASE_URL="postgres://postgres@127.0.0.1:$PG/basalt"
    BASALT_REDIS_URL="redis://127.0.0.1:$REDIS"
    BASALT_AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP/%2f"
    BASALT_LOG_FORMAT=json BASALT_LOG_LEVEL=warn
    BASALT_DATABASE__MIGRATE_ON_START=false
    # The storm measures the hashing, not the limiter.
    BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE=1000000
    BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_ACCOUNT_PER_MINUTE=1000000
    BASALT_IDENTITY__RATE_LIMITS__REGISTER_PER_IP_PER_HOUR=1000000
    BASALT_IDENTITY__LOCKOUT_THRESHOLD=1000000
)
inherited=()
for var in $(compgen -e); do [[ "$var" != BASALT_* ]] || inherited+=(-u "$var"); done
# The migration Job's peak memory (GNU time, apt `time`), on the empty database.
migrate_rss="?"
if [ -x /usr/bin/time ]; then
    env "${inherited[@]}" "${common[@]}" BASALT_DATA_DIR="$W/migrate" \
        /usr/bin/time -f '%M' -o "$W/migrate.rss" "$bin" migrate >"$W/migrate.log" 2>&1
    migrate_rss=$(awk '{ printf "%.1f MiB", $1 / 1024 }' "$W/migrate.rss")
else
    env "${inherited[@]}" "${common[@]}" BASALT_DATA_DIR="$W/migrate" "$bin" migrate >"$W/migrate.log" 2>&1
fi

start_node() { # NAME PORT ROLE [SETTINGS...]
    local name=$1 port=$2 role=$3
    shift 3
    mkdir -p "$W/$name"
    env "${inherited[@]}" "${common[@]}" "$@" BASALT_ROLE="$role" BASALT_LISTEN="127.0.0.1:$port" \
        BASALT_DATA_DIR="$W/$name" "$bin" serve >"$W/$name/server.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 150); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "$name did not become ready" >&2
    cat "$W/$name/server.log" >&2
    return 1
}
start_node api "$API" api
api_pid=${pids[-1]}
start_node worker "$WORKER" worker BASALT_JOBS__WORKERS=4
worker_pid=${pids[-1]}
base="http://127.0.0.1:$API"

# Memory samples: "time phase node rss_kib".
phase=idle-start
echo "$phase" >"$W/phase"
(
    while :; do
        p=$(cat "$W/phase")
        for n in api worker; do
            pid=$api_pid
            [ "$n" = api ] || pid=$worker_pid
            rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
            echo "$p $n $rss"
        done
        sleep 0.5
    done
) >"$W/samples" &
sampler=$!

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -A cpu_from
phase_start() {
    phase=$1
    echo "$phase" >"$W/phase"
    t0=$(date +%s.%N)
    cpu_from[api]=$(cpu_ticks "$api_pid")
    cpu_from[worker]=$(cpu_ticks "$worker_pid")
}
hz=$(getconf CLK_TCK)
phase_end() {
    local t1 n pid
    t1=$(date +%s.%N)
    for n in api worker; do
        pid=$api_pid
        [ "$n" = api ] || pid=$worker_pid
        awk -v a="${cpu_from[$n]}" -v b="$(cpu_ticks "$pid")" -v hz="$hz" -v t0="$t0" -v t1="$t1" \
            -v p="$phase" -v n="$n" \
            'BEGIN { printf "cpu %s %s %.3f cores over %.1f s\n", p, n, (b - a) / hz / (t1 - t0), t1 - t0 }'
    done >>"$W/cpu"
}

phase_start idle-start
sleep 5
phase_end

phase_start signups
export base PASSWORD
# shellcheck disable=SC2016  # expanded by the inner sh, from the exports
seq 1 "$USERS" | xargs -P 4 -I{} sh -c '
    curl -s -o /dev/null -w "%{http_code}\n" --max-time 30 -H "Content-Type: application/json" \
        -d "{\"email\":\"measure-{}@example.com\",\"username\":\"measure-{}\",\"password\":\"$PASSWORD\"}" \
        "$base/api/auth/register"' >"$W/signups"
# Until the worker has sent every verification mail (the job queue is empty).
for _ in $(seq 1 120); do
    left=$($(pg_as) "$(pg_bindir)/psql" -tA -h 127.0.0.1 -p "$PG" -U postgres basalt \
        -c "SELECT count(*) FROM jobs WHERE kind = 'identity.send_link' AND state IN ('queued','running')" 2>/dev/null || echo "?")
    [ "$left" = 0 ] && break
    sleep 0.5
done
phase_end

phase_start signin-storm
BENCH_USERS=$USERS BENCH_EMAIL_PREFIX=measure- BENCH_PASSWORD=$PASSWORD \
    wrk -t2 -c16 -d"${DURATION}s" -s bench/wrk/token.lua "$base" >"$W/wrk-token" 2>&1 || true
phase_end

phase_start reads
wrk -t2 -c32 -d"${DURATION}s" "$base/api/articles" >"$W/wrk-reads" 2>&1 || true
phase_end

phase_start idle-end
sleep 5
phase_end
kill "$sampler"
sampler=

echo "binary: $bin ($(git rev-parse --short HEAD 2>/dev/null || echo ?)); $(nproc) cores"
echo "migrate: peak $migrate_rss (max RSS)"
echo "sign-ups: $(grep -c '^201$' "$W/signups") of $USERS answered 201; jobs left: ${left:-?}"
echo "storm: $(grep -E 'Requests/sec' "$W/wrk-token" | tr -s ' ')  $(grep -E 'Non-2xx' "$W/wrk-token" || true)"
echo "reads: $(grep -E 'Requests/sec' "$W/wrk-reads" | tr -s ' ')  $(grep -E 'Non-2xx' "$W/wrk-reads" || true)"
cat "$W/cpu"
awk '{ k = $1 " " $2; if ($3 > max[k]) max[k] = $3; if (!(k in first)) first[k] = $3; last[k] = $3 }
     END { for (k in max) printf "rss %s: first %.1f MiB, last %.1f MiB, max %.1f MiB\n", k, first[k] / 1024, last[k] / 1024, max[k] / 1024 }' \
    "$W/samples" | sort
for n in api worker; do
    pid=$api_pid
    [ "$n" = api ] || pid=$worker_pid
    echo "peak $n: $(awk '/^VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status") (VmHWM)"
done
