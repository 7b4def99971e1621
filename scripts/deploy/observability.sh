#!/usr/bin/env bash
# Monitoring and log shipping, proven against a real Basalt:
#   1. `promtool check rules` and `promtool test rules` on deploy/prometheus
#      (a firing and a quiet case per alert), and the dashboards' JSON
#      against its source, scripts/deploy/observability/dashboards.py;
#   2. a real Basalt (JSON logs) under a short load touching every route
#      family the dashboards show (scripts/deploy/observability/load.py),
#      scraped every second by Debian's Prometheus server with the alert
#      rules loaded: every rule must load and evaluate with health "ok", and
#      every panel query of every deploy/grafana/dashboards/*.json must return
#      data through Prometheus's HTTP API (check_dashboards.py);
#   3. the fields deploy/logging/vector.toml reads from Basalt's JSON lines
#      must be in the lines that server wrote (check_logs.py); with
#      OBSERVABILITY_VRL=1, its remap program also runs through the real VRL
#      compiler and runtime (the `vrl` crate, scripts/deploy/observability/
#      vrl-check, built into a cache outside the clone: ~3 CPU-minutes the
#      first time) on those lines, and the events it makes are checked.
#
# Usage: bash scripts/deploy/observability.sh [--rules-only] [DATABASE_URL [REDIS_URL [AMQP_URL]]]
#   DATABASE_URL  an empty database (default: a new SQLite file)
#   REDIS_URL     default: a throw-away redis-server started here (the
#                 dashboards show Redis; without it basalt_redis_up is absent)
#   AMQP_URL      default: none (the in-process event bus)
# Environment: BASALT_BIN (default $CARGO_TARGET_DIR/debug/basalt),
#   OBSERVABILITY_VRL=1 to run the Vector transform itself (see 3.).
# Installs Debian's prometheus (and redis-server) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=scripts/lib/redis.sh
source scripts/lib/redis.sh

log() { printf '==> %s\n' "$*"; }
rules_only=0
if [ "${1:-}" = --rules-only ]; then
    rules_only=1
    shift
fi
database_url=${1:-} redis_url=${2:-} amqp_url=${3:-}
RULES=deploy/prometheus/rules/basalt.rules.yml

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    log "installing Debian's prometheus"
    apt_install prometheus
    # The package may start its own service; this script runs its own server.
    as_root systemctl stop prometheus >/dev/null 2>&1 || true
fi

# --- 1. the rules, offline --------------------------------------------------
log "promtool check rules ($(promtool --version 2>&1 | head -1 | awk '{print $3}'))"
promtool check rules "$RULES"
log "promtool test rules"
promtool test rules deploy/prometheus/tests/*.test.yml
log "dashboards: the JSON is what its source makes"
python3 scripts/deploy/observability/dashboards.py --check
[ "$rules_only" -eq 0 ] || exit 0

# --- 2. a real Basalt, scraped ------------------------------------------------
bin="${BASALT_BIN:-${CARGO_TARGET_DIR:-target}/debug/basalt}"
[ -x "$bin" ] || { echo "no Basalt binary at $bin (build it, or set BASALT_BIN)" >&2; exit 1; }
work=$(mktemp -d /tmp/basalt-observability.XXXXXX)
server_pid='' prom_pid='' redis_dir=''
# Set by alloc_port.
port='' prom_port='' redis_port='' otlp_port=''
cleanup() {
    local pid
    for pid in "$server_pid" "$prom_pid"; do
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -z "$redis_dir" ] || redis_stop "$redis_dir"
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "observability: $*" >&2
    for f in server.err prometheus.log; do
        [ -s "$work/$f" ] && { echo "--- $f ---"; tail -20 "$work/$f"; }
    done
    exit 1
}

if [ -z "$redis_url" ]; then
    command -v redis-server >/dev/null 2>&1 || { log "installing redis-server"; apt_install redis-server; }
    alloc_port redis_port 18890
    redis_dir="$work/redis"
    redis_start "$redis_dir" "$redis_port"
    redis_url="redis://127.0.0.1:$redis_port"
fi

# Log lines carry trace_id once tracing is in the code; then it is checked,
# with OTLP export on (to a port where nothing listens: export failures do
# not matter here, the ids in the log lines do).
trace_args=() otel=()
if grep -q trace_id crates/basalt-platform/src/telemetry.rs; then
    alloc_port otlp_port 18990
    trace_args=(--require-trace-id)
    otel=("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$otlp_port")
fi

alloc_port port 18800
prefix="observability-$(date +%s%N)"
# Only the variables below reach the server: Basalt checks BASALT_* ones,
# and the caller's (BASALT_BIN) are not its settings.
unset_basalt=()
for var in $(compgen -e); do
    [[ "$var" != BASALT_* ]] || unset_basalt+=(-u "$var")
done
# A 1 s header timeout lets the load provoke a connection close in seconds;
# sign-up and sign-in limits are raised for the load's few dozen accounts.
env "${unset_basalt[@]}" ${otel[@]+"${otel[@]}"} \
    BASALT_LISTEN="127.0.0.1:$port" BASALT_DATA_DIR="$work" \
    BASALT_DATABASE_URL="${database_url:-sqlite://$work/basalt.db}" \
    BASALT_REDIS_URL="$redis_url" BASALT_REDIS__KEY_PREFIX="$prefix" \
    ${amqp_url:+"BASALT_AMQP_URL=$amqp_url" "BASALT_EVENTS__AMQP_PREFIX=$prefix"} \
    BASALT_LOG_FORMAT=json BASALT_LOG_LEVEL=info \
    BASALT_HTTP__HEADER_READ_TIMEOUT_SECS=1 \
    BASALT_IDENTITY__RATE_LIMITS__REGISTER_PER_IP_PER_HOUR=100000 \
    BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE=100000 \
    "$bin" serve >"$work/server.log" 2>"$work/server.err" &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 150); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || fail "Basalt exited at start"
    sleep 0.2
done
curl -fsS "$base/healthz" >/dev/null || fail "Basalt did not start on $base"
log "Basalt on $base ($("$bin" --version 2>/dev/null || echo basalt))"

alloc_port prom_port 19090
prom="http://127.0.0.1:$prom_port"
cat >"$work/prometheus.yml" <<EOF
# Generated by scripts/deploy/observability.sh.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/$RULES
scrape_configs:
  - job_name: basalt
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
# prom_json QUERY-PATH PYTHON-EXPR: evaluates EXPR on the JSON answer `j`.
prom_json() {
    curl -fsS "$prom$1" 2>/dev/null |
        python3 -c "import json,sys; j=json.load(sys.stdin); print($2)" 2>/dev/null
}
up=''
for _ in $(seq 1 150); do
    up=$(prom_json '/api/v1/query?query=up%7Bjob%3D%22basalt%22%7D' \
        '",".join(r["value"][1] for r in j["data"]["result"])' || true)
    [ "$up" = 1 ] && break
    kill -0 "$prom_pid" 2>/dev/null || fail "Prometheus exited at start"
    sleep 0.2
done
[ "$up" = 1 ] || fail "Prometheus does not scrape $base/metrics (up=$up)"
log "Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') on $prom scrapes it every second"

log "load: every route family the dashboards show, twice"
# Twice, scrapes apart: a labelled series appears on its first increment, so
# what happens between two scrapes of a fresh series shows no rate. The
# second round increments series Prometheus already holds.
python3 scripts/deploy/observability/load.py "$base" || fail "the load failed"
sleep 2.5
python3 scripts/deploy/observability/load.py "$base" || fail "the load failed"
# A few scrapes and rule evaluations after the load, and one refresh of the
# job queue's depth (every 5 s on a node with workers).
sleep 6

log "alert and recording rules loaded and evaluated"
expected=$(grep -cE '^\s*- (alert|record):' "$RULES")
prom_json /api/v1/rules '"\n".join("\t".join([r["name"], r["health"], r.get("lastError", "")])
    for g in j["data"]["groups"] for r in g["rules"])' >"$work/rules.tsv" ||
    fail "cannot read /api/v1/rules"
loaded=$(wc -l <"$work/rules.tsv")
bad=$(awk -F'\t' '$2 != "ok"' "$work/rules.tsv")
if [ "$loaded" -ne "$expected" ] || [ -n "$bad" ]; then
    cat "$work/rules.tsv"
    fail "$loaded of $expected rules loaded; not ok: ${bad:-none}"
fi
echo "  $loaded rules from $RULES, every one with health ok"

log "every panel query of deploy/grafana/dashboards returns data"
python3 scripts/deploy/observability/check_dashboards.py "$prom" \
    deploy/grafana/provisioning/datasources/prometheus.yml deploy/grafana/dashboards/*.json ||
    fail "a dashboard query failed"

# --- 3. the log fields the shipper reads --------------------------------------
log "stopping Basalt (SIGTERM) for its last log lines"
kill -TERM "$server_pid"
wait "$server_pid" || fail "Basalt did not exit cleanly on SIGTERM"
server_pid=''
log_args=(${trace_args[@]+"${trace_args[@]}"})
if [ "${OBSERVABILITY_VRL:-0}" = 1 ]; then
    vrl_target="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/vrl-check/target"
    # shellcheck source=scripts/lib/toolchain.sh
    source scripts/lib/toolchain.sh
    use_pinned_toolchain "$PWD"
    log "building vrl-check (the vrl crate) into $vrl_target"
    CARGO_TARGET_DIR="$vrl_target" cargo build --quiet --locked \
        --manifest-path scripts/deploy/observability/vrl-check/Cargo.toml
    python3 -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb"))["transforms"]["basalt_parse"]["source"])' \
        deploy/logging/vector.toml >"$work/remap.vrl"
    log "vector.toml's remap program, compiled and run by VRL on Basalt's log"
    "$vrl_target/debug/vrl-check" "$work/remap.vrl" <"$work/server.log" >"$work/events.jsonl" ||
        fail "the remap program does not compile or fails on a line"
    log_args+=(--shipped "$work/events.jsonl")
fi
log "the fields deploy/logging/vector.toml reads are in Basalt's JSON log"
python3 scripts/deploy/observability/check_logs.py deploy/logging/vector.toml "$work/server.log" \
    ${log_args[@]+"${log_args[@]}"} || fail "the log check failed"
log "observability: rules, dashboards and log fields checked"
