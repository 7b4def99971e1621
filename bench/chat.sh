#!/usr/bin/env bash
# Basalt's benchmark harness. Scenario: the chat's WebSocket (issue 16),
# driven by the load generator bench/chat-load (Rust, its own workspace):
#   connections  N authenticated connections, each subscribed to a room,
#                held idle; the server's RSS before and after gives its
#                memory per idle connection;
#   fan-out      S subscribers in R rooms, P publishers sending at a fixed
#                rate; the rate is raised step by step to the highest one
#                the server sustains (every message delivered, p99 under
#                500 ms, no errors), then measured at half of it: delivered
#                messages/s and publish -> deliver latency, taken from each
#                message's *intended* send time (coordinated omission
#                corrected), in an HdrHistogram.
# on three stacks ("backends"):
#   sqlite    one node, SQLite, in-process broadcast and presence;
#   postgres  one node, PostgreSQL, the same in-process adapters;
#   cluster   two nodes on PostgreSQL with Redis (broadcast, presence, rate
#             limits): publishers on node A, subscribers on node B, so that
#             every message crosses Redis. Compared with `postgres`: the
#             cost per message of going through Redis.
#
#   bash bench/chat.sh [--reps N] [--backends "B ..."] [--connections N]
#                      [--subscribers N] [--publishers N] [--rooms N]
#                      [--step-secs S] [--start-rate R] [--report FILE]
#                      [--worktree | --no-build] [--quick] [--quiet-budget SECS]
#
# Defaults: 3 repetitions (connections: 3 fresh servers; fan-out: one ramp,
# then 3 runs at half the highest rate), 10,000 connections, 1,000
# subscribers in 10 rooms (100 per room), 10 publishers, 10 s steps, the
# three backends, the committed code (HEAD, exported to a folder of its
# own; --worktree measures the working tree, --no-build the binary already
# in CARGO_TARGET_DIR). --quick: 2,000 connections, 200 subscribers, 3 s
# steps, one repetition (to try the harness out). --quiet-budget: the most
# seconds spent waiting for a quiet machine, in all (default 600). A full run takes about
# 25 minutes once the release build exists.
#
# What it does (every wait and loop is bounded):
#  1. builds `basalt` (release: fat LTO, several minutes) and chat-load in
#     CARGO_TARGET_DIR (default /work/target-bench); raises the open-file
#     limit of this shell, so of the servers and the generator;
#  2. for each backend: a throw-away PostgreSQL cluster and Redis server as
#     needed (scripts/lib/{postgres,redis}.sh, removed at the end whatever
#     happens); starts the node(s) on free loopback ports with the default
#     configuration except: log level warn, identity and chat rate limits
#     out of the way (the generator's accounts send far more than a person),
#     access tokens that outlive the run, and http.max_connections above the
#     connections wanted;
#  3. chat-load creates 20 accounts (through /api/auth/register) and the
#     rooms (POST /api/chat/rooms, /join) and spreads its connections over
#     them and over source addresses 127.0.0.1-4;
#  4. waits for the machine to be quiet before each measurement (other
#     people's builds skew everything) and records how busy it was.
# Then it writes the medians, the goals and the machine's description into
# BENCHMARKS.md between this scenario's marker comments (other sections are
# left as they are), followed by bench/notes/chat.md (the hand-written
# analysis). A partial run (--backends, --quick, --no-build) writes its
# section to bench/out/<timestamp>/section.md only, unless --report names a
# file. Raw output goes to bench/out/<timestamp>/ (ignored by git).
#
# Traffic goes to 127.0.0.1 only. Nothing here asserts a performance goal:
# it measures and reports.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"
REPORT="$ROOT/BENCHMARKS.md"
REPORT_GIVEN=no
SECTION=chat

REPS=3
ALL_BACKENDS="sqlite postgres cluster"
BACKENDS=$ALL_BACKENDS
CONNECTIONS=10000
SUBSCRIBERS=1000
PUBLISHERS=10
ROOMS=10
USERS=20
STEP_SECS=10
START_RATE=50        # sends/s of the ramp's first step (x 100 subscribers per room)
SOURCE="head"        # or "worktree", "prebuilt"
QUICK=no
# Goals of the issue, on this machine with the generator on the same cores.
GOAL_CONNECTIONS=10000
GOAL_KB_PER_CONNECTION=20     # KB = 1,000 bytes
GOAL_DELIVERED_PER_CORE=25000
GOAL_P99_MS=50

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}
die() {
    echo "bench: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=${2:?}; shift 2 ;;
        --backends) BACKENDS=${2:?}; shift 2 ;;
        --connections) CONNECTIONS=${2:?}; shift 2 ;;
        --subscribers) SUBSCRIBERS=${2:?}; shift 2 ;;
        --publishers) PUBLISHERS=${2:?}; shift 2 ;;
        --rooms) ROOMS=${2:?}; shift 2 ;;
        --step-secs) STEP_SECS=${2:?}; shift 2 ;;
        --start-rate) START_RATE=${2:?}; shift 2 ;;
        --report) REPORT=${2:?}; REPORT_GIVEN=yes; shift 2 ;;
        --worktree) SOURCE=worktree; shift ;;
        --no-build) SOURCE=prebuilt; shift ;;
        --quick) QUICK=yes; shift ;;
        --quiet-budget) QUIET_BUDGET=${2:?}; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "bench: unknown argument $1" >&2; usage 2 ;;
    esac
done
if [ "$QUICK" = yes ]; then
    REPS=1 CONNECTIONS=2000 SUBSCRIBERS=200 STEP_SECS=3 START_RATE=20
fi
for n in REPS CONNECTIONS SUBSCRIBERS PUBLISHERS ROOMS STEP_SECS START_RATE; do
    [[ "${!n}" =~ ^[0-9]+$ ]] && [ "${!n}" -ge 1 ] || die "--${n,,} must be a positive whole number"
done
for b in $BACKENDS; do
    [[ " $ALL_BACKENDS " == *" $b "* ]] || die "unknown backend $b (known: $ALL_BACKENDS)"
done
case "$REPORT" in /*) ;; *) REPORT="$PWD/$REPORT" ;; esac
FULL_RUN=no
[ "$BACKENDS" = "$ALL_BACKENDS" ] && [ "$QUICK" = no ] && [ "$SOURCE" != prebuilt ] && FULL_RUN=yes

# The measured configuration is the default one plus the overrides below.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^BASALT_' || true)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
. "$BENCH_DIR/lib.sh"
# shellcheck source=scripts/lib/ports.sh
. "$ROOT/scripts/lib/ports.sh"
# shellcheck source=scripts/lib/postgres.sh
. "$ROOT/scripts/lib/postgres.sh"
# shellcheck source=scripts/lib/redis.sh
. "$ROOT/scripts/lib/redis.sh"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$BENCH_DIR/out/$STAMP"
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }
started_at=$(date +%s)
log "chat benchmark: backends $BACKENDS; $CONNECTIONS connections; $SUBSCRIBERS subscribers in $ROOMS rooms," \
    "$PUBLISHERS publishers; $REPS reps; output $OUT"

# ------------------------------------------------------------ limits ----
# Connections x (the generator's end + the server's end) file descriptors:
# raise this shell's limit, which the servers and the generator inherit.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
[ "$NOFILE" -ge $((CONNECTIONS + 1000)) ] \
    || die "open-file limit $NOFILE is too low for $CONNECTIONS connections (raise the hard limit)"
log "open-file limit $NOFILE"

# ----------------------------------------------------------------- build ----
for tool in curl awk cargo rustc git; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
BASALT="$CARGO_TARGET_DIR/release/basalt"
LOADGEN="$CARGO_TARGET_DIR/release/chat-load"
if [ "$SOURCE" = prebuilt ]; then
    SRC=$ROOT
    [ -x "$BASALT" ] && [ -x "$LOADGEN" ] || die "no $BASALT or $LOADGEN to use with --no-build"
    code_desc="a prebuilt binary (\`$BASALT\` of $(date -u -r "$BASALT" '+%Y-%m-%d %H:%M UTC'); which source it was built from is not known)"
elif [ "$SOURCE" = head ]; then
    export_head "$ROOT"
else
    SRC=$ROOT
    head_commit=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
    code_desc="the working tree on commit ${head_commit:0:7} (uncommitted edits, if any, included)"
fi
if [ "$SOURCE" != prebuilt ]; then
    log "building $SRC (release; several minutes the first time) -> $OUT/build.log"
    build_release "$SRC" "$OUT/build.log" -p basalt || die "build failed (see $OUT/build.log)"
    (cd "$SRC/bench/chat-load" && cargo build --release --locked) >>"$OUT/build.log" 2>&1 \
        || die "chat-load build failed (see $OUT/build.log)"
fi
CORES=$(nproc)
machine=$(describe_machine)
log "machine: $machine"

# ------------------------------------------------------------- processes ----
WORK=$(mktemp -d /tmp/basalt-chat-bench.XXXXXX)
# The binaries measured are copies: others may rebuild CARGO_TARGET_DIR meanwhile.
cp "$BASALT" "$WORK/basalt"
cp "$LOADGEN" "$WORK/chat-load"
BASALT="$WORK/basalt"
LOADGEN="$WORK/chat-load"
NODE_PIDS=()
PG_DIR=""
PG_PID=""
REDIS_DIR=""
REDIS_PID=""
stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${NODE_PIDS[@]}"; do
        for _ in $(seq 1 80); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    NODE_PIDS=()
}
stop_stores() {
    if [ -n "$PG_DIR" ]; then
        pg_stop "$PG_DIR"
        rm -rf "$PG_DIR"
    fi
    if [ -n "$REDIS_DIR" ]; then
        redis_stop "$REDIS_DIR"
        rm -rf "$REDIS_DIR"
    fi
    PG_DIR="" PG_PID="" REDIS_DIR="" REDIS_PID=""
}
cleanup() {
    local status=$?
    stop_nodes
    stop_stores
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_postgres() {
    pg_bindir >/dev/null || {
        log "installing PostgreSQL with apt"
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o 'DPkg::Post-Invoke::=' install -y postgresql; } \
            >>"$OUT/apt.log" 2>&1 || die "cannot install postgresql (see $OUT/apt.log)"
    }
    local port bin
    PG_DIR=$(mktemp -d /tmp/basalt-chat-pg.XXXXXX)
    alloc_port port 26432 || die "no free port for PostgreSQL"
    pg_start "$PG_DIR" "$port" || die "PostgreSQL did not start"
    PG_PID=$(head -n1 "$PG_DIR/data/postmaster.pid")
    bin=$(pg_bindir)
    "$bin/psql" "postgres://postgres@127.0.0.1:$port/postgres" -X -q -c "CREATE DATABASE basalt_bench" \
        || die "cannot create the database"
    PG_URL="postgres://postgres@127.0.0.1:$port/basalt_bench"
    pg_version=$("$bin/postgres" --version | awk '{ print $3 }')
    log "PostgreSQL $pg_version on 127.0.0.1:$port (pid $PG_PID)"
}
start_redis() {
    command -v redis-server >/dev/null 2>&1 || {
        log "installing Redis with apt"
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o 'DPkg::Post-Invoke::=' install -y redis-server; } \
            >>"$OUT/apt.log" 2>&1 || die "cannot install redis-server (see $OUT/apt.log)"
    }
    local port
    REDIS_DIR=$(mktemp -d /tmp/basalt-chat-redis.XXXXXX)
    alloc_port port 26379 || die "no free port for Redis"
    redis_start "$REDIS_DIR" "$port" || die "Redis did not start"
    REDIS_PID=$(cat "$REDIS_DIR/redis.pid")
    REDIS_URL="redis://127.0.0.1:$port"
    redis_version=$(redis-server --version | awk '{ print $3 }' | tr -d v=)
    log "Redis $redis_version on 127.0.0.1:$port (pid $REDIS_PID)"
}

# The settings every node gets on top of the defaults.
NODE_ENV=(
    BASALT_LISTEN=127.0.0.1:0
    # warn, but keep the "ready" line, which names the port.
    "BASALT_LOG_LEVEL=warn,basalt_platform::server=info"
    BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE=1000000
    BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_ACCOUNT_PER_MINUTE=1000000
    BASALT_IDENTITY__RATE_LIMITS__REGISTER_PER_IP_PER_HOUR=1000000
    # The subscribers resume with the same token after a 4008 or a restart.
    BASALT_IDENTITY__ACCESS_TOKEN_TTL_SECS=86400
    # A handful of accounts send for a whole room of people. (Not more: the
    # Redis limiter's step is whole microseconds, and above 60,000,000 a
    # minute it is 0, which its script cannot store: every send would then
    # fail over to the in-process limiter with a warning.)
    BASALT_CHAT__RATE_LIMITS__SENDS_PER_MINUTE=10000000
    BASALT_CHAT__RATE_LIMITS__TYPING_PER_MINUTE=10000000
    # The default cap (10,000) would refuse the goal's last connections
    # together with the generator's set-up requests.
    BASALT_HTTP__MAX_CONNECTIONS=$((CONNECTIONS + 1000))
)

# start_node LABEL ENV...: starts a node; appends its pid to NODE_PIDS and
# sets NODE_BASE (http://127.0.0.1:PORT).
start_node() {
    local label=$1 data="$WORK/$BACKEND-$1-data" pid port=""
    shift
    mkdir -p "$data"
    env "${NODE_ENV[@]}" BASALT_DATA_DIR="$data" "$@" "$BASALT" serve >"$BOUT/$label.log" 2>&1 &
    pid=$!
    NODE_PIDS+=("$pid")
    for _ in $(seq 1 120); do
        kill -0 "$pid" 2>/dev/null || die "$label exited at start (see $BOUT/$label.log)"
        port=$(grep -m1 -o 'listen=127\.0\.0\.1:[0-9]*' "$BOUT/$label.log" | cut -d: -f2 || true)
        [ -n "$port" ] && break
        sleep 0.5
    done
    [ -n "$port" ] || die "$label did not report its port within 60 s (see $BOUT/$label.log)"
    NODE_BASE="http://127.0.0.1:$port"
    curl -fsS --max-time 5 "$NODE_BASE/healthz" >/dev/null || die "GET /healthz of $label failed"
    log "[$BACKEND] $label: pid $pid at $NODE_BASE"
}

# The processes measured, for the quiet check: nodes, PostgreSQL, Redis.
own_ticks() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v list=" ${NODE_PIDS[*]} ${PG_PID:-x} ${REDIS_PID:-x} " '
        index(list, " " $1 " ") { s += $14 + $15 + $16 + $17 }
        $4 == pg { s += $14 + $15 } END { print s + 0 }' pg="${PG_PID:-x}"
}
background_busy() {
    local b0 t0 b1 t1 p0 p1
    p0=$(own_ticks)
    read -r b0 _ t0 _ < <(machine_ticks)
    sleep 2
    read -r b1 _ t1 _ < <(machine_ticks)
    p1=$(own_ticks)
    calc "100 * ($b1 - $b0 - ($p1 - $p0)) / ($t1 - $t0)"
}
QUIET_PCT=15        # "quiet" = at most this much of the machine busy
QUIET_BUDGET=${QUIET_BUDGET:-600}  # seconds of waiting for quiet, in all; then measure anyway
quiet_waited=0

# loadgen LABEL ARGS...: one chat-load run, output to $BOUT/LABEL.txt.
loadgen() {
    local label=$1
    shift
    wait_quiet "$BACKEND/$label"
    timeout 3600 "$LOADGEN" "$@" --users "$USERS" --rooms "$ROOMS" \
        --prefix "cb$(date +%H%M%S)$RANDOM" >"$BOUT/$label.txt" 2>"$BOUT/$label.err" \
        || die "$label failed: $(tail -n 3 "$BOUT/$label.err")"
}
# result FILE PHASE KEY: a value of chat-load's RESULT line for PHASE.
result() {
    grep -m1 "^RESULT .* phase=$2 \|^RESULT mode=$2 " "$1" | tr ' ' '\n' | awk -F= -v k="$3" '$1 == k { print $2 }'
}

# ---------------------------------------------------------------- a run ----
run_backend() {
    BACKEND=$1
    BOUT="$OUT/$BACKEND"
    mkdir -p "$BOUT"
    local -a store_env=() pids=() aux=()
    case "$BACKEND" in
        postgres) start_postgres; store_env=(BASALT_DATABASE_URL="$PG_URL") ;;
        cluster)
            start_postgres
            start_redis
            store_env=(BASALT_DATABASE_URL="$PG_URL" BASALT_REDIS_URL="$REDIS_URL")
            ;;
    esac
    [ -n "$PG_PID" ] && aux+=(--aux-pid "$PG_PID")
    [ -n "$REDIS_PID" ] && aux+=(--aux-pid "$REDIS_PID")

    # Idle connections, on one node (the cluster's node B), fresh each time.
    local rep
    for rep in $(seq 1 "$REPS"); do
        [ "$BACKEND" = sqlite ] && rm -rf "$WORK/$BACKEND-node-data"
        start_node node "${store_env[@]}"
        [ "$rep" = 1 ] && env "${NODE_ENV[@]}" BASALT_DATA_DIR="$WORK/$BACKEND-node-data" "${store_env[@]}" \
            "$BASALT" config print >"$BOUT/config.txt" 2>&1 || true
        sleep 3
        loadgen "connections-$rep" connections --server "$NODE_BASE" --server-pid "${NODE_PIDS[0]}" \
            --connections "$CONNECTIONS"
        log "  [$BACKEND] connections run $rep/$REPS: $(result "$BOUT/connections-$rep.txt" connections held) held," \
            "$(result "$BOUT/connections-$rep.txt" connections kib_per_conn) KiB per idle connection," \
            "opened in $(result "$BOUT/connections-$rep.txt" connections connect_secs) s"
        stop_nodes
    done

    # Fan-out: one ramp, then REPS runs at half the highest rate.
    local -a fanout_args=(fanout --subscribers "$SUBSCRIBERS" --publishers "$PUBLISHERS" --rate "$START_RATE"
        --ramp --runs "$REPS" --step-secs "$STEP_SECS")
    if [ "$BACKEND" = cluster ]; then
        start_node node-a "${store_env[@]}"
        local base_a=$NODE_BASE
        start_node node-b "${store_env[@]}"
        fanout_args+=(--server "$NODE_BASE" --publisher-server "$base_a")
    else
        start_node node "${store_env[@]}"
        fanout_args+=(--server "$NODE_BASE")
    fi
    for pid in "${NODE_PIDS[@]}"; do pids+=(--server-pid "$pid"); done
    sleep 3
    loadgen fanout "${fanout_args[@]}" "${pids[@]}" "${aux[@]}"
    grep '^\[' "$BOUT/fanout.txt" | while read -r line; do log "  [$BACKEND] ${line:0:200}"; done
    for pid in "${NODE_PIDS[@]}"; do
        grep -E ' (WARN|ERROR) ' "$BOUT"/node*.log >"$BOUT/server-warnings.txt" || true
        awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" >>"$BOUT/rss-peak-kib.txt" 2>/dev/null || true
    done
    stop_nodes
    stop_stores
}

for backend in $BACKENDS; do
    run_backend "$backend"
done
measured_at=$(date -u '+%Y-%m-%d %H:%M UTC')
elapsed_min=$(fmt 0 "$(calc "($(date +%s) - $started_at) / 60")")
log "measurements done in $elapsed_min min; writing the report"

# ----------------------------------------------------------------- report ----
backend_title() {
    case "$1" in
        sqlite) echo "SQLite, one node" ;;
        postgres) echo "PostgreSQL, one node" ;;
        cluster) echo "PostgreSQL + Redis, two nodes" ;;
    esac
}
# med BACKEND KEY: the median over the connection runs.
conn_median() {
    local r
    for r in $(seq 1 "$REPS"); do result "$OUT/$1/connections-$r.txt" connections "$2"; done | median
}
# fan BACKEND PHASE KEY
fan() { result "$OUT/$1/fanout.txt" "$2" "$3"; }
kb() { fmt 1 "$(calc "$1 * 1.024")"; }
# met VALUE OP GOAL: "**met**" or "**not met**" (OP: <, <= or >=).
met() { awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN {
    ok = (op == "<" ? v < g : op == "<=" ? v <= g : v >= g); print (ok ? "**met**" : "**not met**") }'; }

SECTION_FILE="$OUT/section.md"
{
    echo "<!-- bench:$SECTION:begin (written by bench/chat.sh; edits here are overwritten) -->"
    echo "## Chat"
    echo
    echo "Measured $measured_at on $machine; $code_desc, release profile ($(release_profile "$SRC"))."
    echo "Load generator: \`bench/chat-load\` on the same cores. $REPS repetitions; the run took $elapsed_min minutes."
    echo "Each node: default configuration (\`[chat]\` as \`basalt config print\` shows it:"
    echo "$(awk '/^\[chat\]/ { on = 1; next } /^\[/ { on = 0 } on && NF { printf "%s`%s`", sep, $0; sep = ", " }' "$OUT/$(echo "$BACKENDS" | awk '{ print $1 }')/config.txt" 2>/dev/null))"
    echo "except: chat and identity rate limits raised out of the way, \`http.max_connections\` $((CONNECTIONS + 1000)),"
    echo "log level warn.${pg_version:+ PostgreSQL $pg_version (throw-away cluster, fsync off).}${redis_version:+ Redis $redis_version.}"
    echo
    echo "### Idle connections"
    echo
    echo "$CONNECTIONS connections wanted, each authenticated with the \`auth\` frame (20 accounts) and subscribed to one"
    echo "of $ROOMS rooms, pinging every 20 s; a fresh node each run. Memory per connection = (RSS after holding"
    echo "them 20 s − RSS before any) / connections held. Medians:"
    echo
    echo "| backend | held | opened in | RSS before | RSS held | per idle connection | peak RSS |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for b in $BACKENDS; do
        echo "| $(backend_title "$b") | $(conn_median "$b" held) | $(fmt 1 "$(conn_median "$b" connect_secs)") s |" \
            "$(fmt 1 "$(calc "$(conn_median "$b" rss_before_kib) / 1024")") MiB | $(fmt 1 "$(calc "$(conn_median "$b" rss_held_kib) / 1024")") MiB |" \
            "$(fmt 1 "$(conn_median "$b" kib_per_conn)") KiB ($(kb "$(conn_median "$b" kib_per_conn)") KB) |" \
            "$(fmt 1 "$(calc "$(conn_median "$b" rss_peak_kib) / 1024")") MiB |"
    done
    echo
    echo "### Fan-out"
    echo
    echo "$SUBSCRIBERS subscribers in $ROOMS rooms ($((SUBSCRIBERS / ROOMS)) per room), $PUBLISHERS publishers (their own accounts)"
    echo "sending ~70-byte messages at a fixed rate; every message is delivered to its room's subscribers. The rate"
    echo "starts at $START_RATE sends/s and grows by half each ${STEP_SECS}-s step while the step is *sustained* (≥ 99 % of"
    echo "its deliveries within 5 s of its last send, p99 ≤ 500 ms, no errors), with two bisection steps after the"
    echo "first that is not; then $REPS runs at half the highest sustained rate. Latency: publish → deliver, from each"
    echo "message's intended send time (the schedule), so a publisher held up counts as late. CPU: each process's"
    echo "user + system time over the step, in cores; \"per delivery\" = CPU time / messages delivered."
    echo
    echo "| backend | highest sustained | delivered/s there | per core ($CORES) | its p99 | half rate: delivered/s | p50 | p90 | p99 | max | server CPU | per delivery (server + PG/Redis) |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for b in $BACKENDS; do
        echo "| $(backend_title "$b") | $(fmt 0 "$(fan "$b" max rate)") sends/s | $(fmt 0 "$(fan "$b" max delivered_per_s)") |" \
            "$(fmt 0 "$(calc "$(fan "$b" max delivered_per_s) / $CORES")") | $(fmt 1 "$(fan "$b" max p99_ms)") ms |" \
            "$(fmt 0 "$(fan "$b" half-median delivered_per_s)") | $(fmt 2 "$(fan "$b" half-median p50_ms)") ms |" \
            "$(fmt 2 "$(fan "$b" half-median p90_ms)") ms | $(fmt 2 "$(fan "$b" half-median p99_ms)") ms |" \
            "$(fmt 1 "$(fan "$b" half-median max_ms)") ms | $(fmt 2 "$(fan "$b" half-median server_cores)") cores |" \
            "$(fmt 1 "$(fan "$b" half-median server_us_per_delivery)") + $(fmt 1 "$(fan "$b" half-median aux_us_per_delivery)") µs |"
    done
    echo
    echo "Every step of the ramps (rate, delivered, latency, CPU of the server, of PostgreSQL/Redis and of the"
    echo "generator, and other people's work on the machine) is in \`bench/out/$STAMP/<backend>/fanout.txt\`."
    for b in $BACKENDS; do
        echo "$(backend_title "$b"): subscribers dropped $(fan "$b" connections dropped), resumed $(fan "$b" connections reconnects)," \
            "offsets skipped $(fan "$b" connections gaps), duplicates $(fan "$b" connections duplicates), error frames $(fan "$b" connections errors);" \
            "server WARN/ERROR lines: $(wc -l <"$OUT/$b/server-warnings.txt")."
    done
    if [[ " $BACKENDS " == *" postgres "* && " $BACKENDS " == *" cluster "* ]]; then
        echo
        echo "Through Redis (cluster, at its half rate) against one PostgreSQL node (at its own): server CPU per delivery"
        echo "$(fmt 1 "$(fan postgres half-median server_us_per_delivery)") → $(fmt 1 "$(fan cluster half-median server_us_per_delivery)") µs (both nodes), PostgreSQL and Redis"
        echo "$(fmt 1 "$(fan postgres half-median aux_us_per_delivery)") → $(fmt 1 "$(fan cluster half-median aux_us_per_delivery)") µs; p99 $(fmt 2 "$(fan postgres half-median p99_ms)") → $(fmt 2 "$(fan cluster half-median p99_ms)") ms."
    fi
    echo
    echo "### Goals"
    echo
    echo "On $CORES cores with the load generator on the same cores:"
    echo
    header="| goal |"
    rule="| --- |"
    for b in $BACKENDS; do header="$header $(backend_title "$b") |"; rule="$rule --- |"; done
    echo "$header"
    echo "$rule"
    row="| $GOAL_CONNECTIONS concurrent connections on one node |"
    for b in $BACKENDS; do
        h=$(conn_median "$b" held)
        row="$row $(met "$h" ">=" "$GOAL_CONNECTIONS") ($h) |"
    done
    echo "$row"
    row="| ≤ $GOAL_KB_PER_CONNECTION KB per idle connection |"
    for b in $BACKENDS; do
        k=$(kb "$(conn_median "$b" kib_per_conn)")
        row="$row $(met "$k" "<=" "$GOAL_KB_PER_CONNECTION") ($k KB) |"
    done
    echo "$row"
    row="| ≥ $GOAL_DELIVERED_PER_CORE delivered messages/s per core |"
    for b in $BACKENDS; do
        d=$(calc "$(fan "$b" max delivered_per_s) / $CORES")
        row="$row $(met "$d" ">=" "$GOAL_DELIVERED_PER_CORE") ($(fmt 0 "$d")) |"
    done
    echo "$row"
    row="| p99 publish → deliver < $GOAL_P99_MS ms at half the highest rate |"
    for b in $BACKENDS; do
        p=$(fan "$b" half-median p99_ms)
        row="$row $(met "$p" "<" "$GOAL_P99_MS") ($(fmt 1 "$p") ms) |"
    done
    echo "$row"
    if [ -f "$BENCH_DIR/notes/$SECTION.md" ]; then
        echo
        cat "$BENCH_DIR/notes/$SECTION.md"
    fi
    echo "<!-- bench:$SECTION:end -->"
} >"$SECTION_FILE"

if [ "$FULL_RUN" = no ] && [ "$REPORT_GIVEN" = no ]; then
    log "partial run: section written to $SECTION_FILE only (BENCHMARKS.md left as it is)"
    cat "$SECTION_FILE"
    exit 0
fi
if grep -q "^<!-- bench:$SECTION:begin" "$REPORT"; then
    awk -v begin="^<!-- bench:$SECTION:begin" -v end="^<!-- bench:$SECTION:end" -v file="$SECTION_FILE" '
        $0 ~ begin { while ((getline line < file) > 0) print line; skipping = 1; next }
        skipping && $0 ~ end { skipping = 0; next }
        !skipping { print }' "$REPORT" >"$OUT/BENCHMARKS.md.new"
    mv "$OUT/BENCHMARKS.md.new" "$REPORT"
else
    { echo; cat "$SECTION_FILE"; } >>"$REPORT"
fi
log "wrote the \"Chat\" section of $REPORT"
cat "$SECTION_FILE"
