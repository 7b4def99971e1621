#!/usr/bin/env bash
# Basalt's benchmark harness. Scenario: identity sign-in.
#
#   bash bench/run.sh [--reps N] [--duration SECS] [--users N] [--postgres URL]
#                     [--max-concurrent-hashes N] [--argon2 MEMORY_KIB,PASSES]
#                     [--report FILE] [--worktree]
#
# Defaults: 5 repetitions of 20 s, 200 users, SQLite, the server's default
# hash concurrency and Argon2id cost, report into BENCHMARKS.md at the repository's root, and
# the committed code (HEAD, exported to a folder of its own; --worktree
# measures the working tree instead, uncommitted edits included).
#
# What it does, in order (every wait and loop is bounded in count and time):
#  1. installs wrk with apt if it is missing; builds `basalt` and the
#     `hash_cost` example in release mode (CARGO_TARGET_DIR, default
#     /work/target-bench), from HEAD or the working tree;
#  2. starts `basalt serve` on a free loopback port (port 0) with a fresh
#     temporary data dir (SQLite; or --postgres URL, which must point at a
#     throw-away database), default configuration except: rate limits and
#     lockout raised out of the way, log level warn;
#  3. seeds USERS accounts through POST /api/auth/register;
#  4. N times (default 5), each step after waiting for the machine to be
#     quiet (other people's builds and tests skew everything):
#     - a paced read probe of GET /.well-known/jwks.json, server idle;
#     - the cost of one argon2id verification at the server's parameters
#       (crates/basalt/examples/hash_cost.rs, server idle), one at a time
#       and then one per core at once;
#     - a sign-in storm (wrk, POST /api/auth/token rotating over the users);
#     - the cost of one verification again, one at a time. The repetition's
#       ceiling is `cores / mean seconds per hash` over both measurements,
#       the ones just before and just after its storm, and its result is
#       the storm's rate against that ceiling;
#     - the storm and the probe together;
#  5. stops the server with SIGTERM and writes the medians, ratios and the
#     machine's description into BENCHMARKS.md, between this scenario's
#     marker comments (other sections are left as they are), followed by
#     bench/notes/identity-signin.md (the hand-written analysis). Raw output
#     goes to bench/out/<timestamp>/ (ignored by git).
#
# Traffic goes to 127.0.0.1 only. Nothing here asserts a performance goal:
# it measures and reports.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"
WRK_DIR="$BENCH_DIR/wrk"
REPORT="$ROOT/BENCHMARKS.md"
SECTION=identity-signin

REPS=5
DURATION=20          # seconds per measurement
USERS=200
POSTGRES_URL=""
HASH_ITERATIONS=100  # sequential verifications per hash_cost run (≈ 1.5 s)
HASH_PER_THREAD=100  # then this many per core, all cores at once
MAX_CONCURRENT_HASHES=""  # empty: the server's default (one per CPU)
ARGON2=""            # empty: the server's default cost (OWASP: 19456 KiB, 2 passes)
SOURCE="head"        # or "worktree"
STORM_THREADS=2
STORM_CONNECTIONS=16
READ_PATH=/.well-known/jwks.json
READ_CONNECTIONS=4
READ_DELAY_MS=10     # per connection: at most ~100 req/s each
PASSWORD="correct horse battery staple"
THROUGHPUT_GOAL_PCT=90
P99_GOAL_RATIO=2

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
        --duration) DURATION=${2:?}; shift 2 ;;
        --users) USERS=${2:?}; shift 2 ;;
        --postgres) POSTGRES_URL=${2:?}; shift 2 ;;
        --max-concurrent-hashes) MAX_CONCURRENT_HASHES=${2:?}; shift 2 ;;
        --argon2) ARGON2=${2:?}; shift 2 ;;
        --report) REPORT=${2:?}; shift 2 ;;
        --worktree) SOURCE=worktree; shift ;;
        -h|--help) usage 0 ;;
        *) echo "bench: unknown argument $1" >&2; usage 2 ;;
    esac
done
[[ "$REPS" =~ ^[0-9]+$ ]] && [ "$REPS" -ge 1 ] && [ "$REPS" -le 20 ] || die "--reps must be 1..20"
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 5 ] && [ "$DURATION" -le 300 ] || die "--duration must be 5..300 seconds"
[[ "$USERS" =~ ^[0-9]+$ ]] && [ "$USERS" -ge 10 ] && [ "$USERS" -le 5000 ] || die "--users must be 10..5000"
[ -z "$MAX_CONCURRENT_HASHES" ] || [[ "$MAX_CONCURRENT_HASHES" =~ ^[0-9]+$ ]] || die "--max-concurrent-hashes must be a number"
[ -z "$ARGON2" ] || [[ "$ARGON2" =~ ^[0-9]+,[0-9]+$ ]] || die "--argon2 must be MEMORY_KIB,PASSES (e.g. 9216,4)"
ARGON2_MEMORY_KIB=${ARGON2%,*} ARGON2_PASSES=${ARGON2#*,}
[ -n "$ARGON2" ] || ARGON2_MEMORY_KIB=0 ARGON2_PASSES=0
case "$REPORT" in /*) ;; *) REPORT="$PWD/$REPORT" ;; esac

# The measured configuration is the default one plus the overrides below,
# whatever the caller's environment holds.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^BASALT_' || true)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
BASALT="$CARGO_TARGET_DIR/release/basalt"
HASH_COST="$CARGO_TARGET_DIR/release/examples/hash_cost"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$BENCH_DIR/out/$STAMP"
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }
# Helpers shared with bench/blog.sh (median, calc, fmt, field, CPU ticks,
# waiting for a quiet machine, the machine's description, installing wrk).
. "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- tools ----
ensure_wrk
for tool in curl awk getconf cargo rustc; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# What is measured: by default the committed code (HEAD), exported into a
# folder of its own, so that the result names one commit and half-finished
# edits in the working tree can neither skew nor break it; --worktree
# measures the working tree as it is.
EXAMPLE=crates/basalt/examples/hash_cost.rs
if [ "$SOURCE" = head ]; then
    export_head "$ROOT"
    # The harness's own example, until it is committed (or while it differs).
    if ! cmp -s "$ROOT/$EXAMPLE" "$SRC/$EXAMPLE"; then
        mkdir -p "$(dirname "$SRC/$EXAMPLE")"
        cp "$ROOT/$EXAMPLE" "$SRC/$EXAMPLE"
        code_desc="$code_desc, plus \`$EXAMPLE\` from the working tree"
    fi
else
    SRC=$ROOT
    code_desc="commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(git -C "$ROOT" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null || true)" ]; then
        code_desc="$code_desc + uncommitted changes (working tree)"
    fi
fi

log "building $SRC (release; several minutes the first time) -> $OUT/build.log"
build_release "$SRC" "$OUT/build.log" -p basalt --bin basalt --example hash_cost \
    || die "build failed (see $OUT/build.log)"

# -------------------------------------------------------------- helpers ----
# kv FILE KEY: a value of hash_cost's key=value output.
kv() { awk -v k="$2" 'index($0, k "=") == 1 { print substr($0, length(k) + 2) }' "$1"; }

QUIET_PCT=15        # "quiet" = at most this much of the machine busy
QUIET_BUDGET=900    # seconds of waiting for quiet, in all; then measure anyway
quiet_waited=0

CLK_TCK=$(getconf CLK_TCK)
CORES=$(nproc)

# -------------------------------------------------------------- machine ----
machine=$(describe_machine)
log "machine: $machine"

# --------------------------------------------------------------- server ----
WORK=$(mktemp -d /tmp/basalt-bench.XXXXXX)
SERVER_PID=""
cleanup() {
    local status=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 80); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "bench: server did not stop within 40 s of SIGTERM; killing it" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server_env=(
    BASALT_LISTEN=127.0.0.1:0
    BASALT_DATA_DIR="$WORK/data"
    # warn, but keep the "ready" line, which names the port.
    "BASALT_LOG_LEVEL=warn,basalt_platform::server=info"
    BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE=1000000
    BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_ACCOUNT_PER_MINUTE=1000000
    BASALT_IDENTITY__RATE_LIMITS__REGISTER_PER_IP_PER_HOUR=1000000
    BASALT_IDENTITY__LOCKOUT_THRESHOLD=1000000
)
hash_permits="one per CPU = $CORES"
if [ -n "$MAX_CONCURRENT_HASHES" ]; then
    server_env+=(BASALT_IDENTITY__PASSWORDS__MAX_CONCURRENT_HASHES="$MAX_CONCURRENT_HASHES")
    hash_permits="**$MAX_CONCURRENT_HASHES (not the default)**"
fi
if [ -n "$ARGON2" ]; then
    server_env+=(BASALT_IDENTITY__PASSWORDS__ARGON2_MEMORY_KIB="$ARGON2_MEMORY_KIB"
        BASALT_IDENTITY__PASSWORDS__ARGON2_ITERATIONS="$ARGON2_PASSES")
fi
database="SQLite (fresh file in a temporary folder)"
if [ -n "$POSTGRES_URL" ]; then
    server_env+=(BASALT_DATABASE_URL="$POSTGRES_URL")
    database="PostgreSQL ($(echo "$POSTGRES_URL" | sed -E 's#//[^@/]*@#//#; s#\?.*##'))"
fi
mkdir -p "$WORK/data"

log "starting basalt serve ($database)"
env "${server_env[@]}" "$BASALT" serve >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 120); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited at start (see $OUT/server.log)"
    PORT=$(grep -m1 -o 'listen=127\.0\.0\.1:[0-9]*' "$OUT/server.log" | cut -d: -f2 || true)
    [ -n "$PORT" ] && break
    sleep 0.5
done
[ -n "$PORT" ] || die "server did not report its port within 60 s (see $OUT/server.log)"
BASE="http://127.0.0.1:$PORT"
curl -fsS --max-time 5 "$BASE/healthz" >/dev/null || die "GET /healthz failed"
log "server pid $SERVER_PID at $BASE"
ready_lines=$(wc -l <"$OUT/server.log")

# ----------------------------------------------------------------- seed ----
RUN_ID=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
PREFIX="bench-$RUN_ID-"
log "seeding $USERS users ($PREFIX<n>@example.com)"
export BASE PREFIX PASSWORD
seq 1 "$USERS" | xargs -P "$CORES" -I{} sh -c '
    curl -s -o /dev/null -w "%{http_code}\n" --max-time 30 \
        -H "Content-Type: application/json" \
        -d "{\"email\":\"${PREFIX}{}@example.com\",\"username\":\"${PREFIX}{}\",\"password\":\"${PASSWORD}\"}" \
        "$BASE/api/auth/register"' >"$OUT/seed-status.txt"
seeded=$(grep -c '^201$' "$OUT/seed-status.txt" || true)
if [ "$seeded" -ne "$USERS" ]; then
    sort "$OUT/seed-status.txt" | uniq -c >&2
    die "only $seeded of $USERS registrations returned 201"
fi
# Give the job queue a moment to send (log) the verification mails, so that
# it does not compete with the measurements.
for _ in $(seq 1 20); do
    pending=$(env "${server_env[@]}" "$BASALT" jobs list --state queued --limit 1000 2>/dev/null | tail -n +2 | wc -l)
    running=$(env "${server_env[@]}" "$BASALT" jobs list --state running --limit 1000 2>/dev/null | tail -n +2 | wc -l)
    [ $((pending + running)) -eq 0 ] && break
    sleep 0.5
done
log "job queue after seeding: $pending queued, $running running"
jobs_left=$((pending + running))

sanity=$(curl -s -o "$OUT/sanity.json" -w "%{http_code}" --max-time 30 -H "Content-Type: application/json" \
    -d "{\"email\":\"${PREFIX}1@example.com\",\"password\":\"$PASSWORD\"}" "$BASE/api/auth/token")
[ "$sanity" = 200 ] && grep -q '"access_token"' "$OUT/sanity.json" \
    || die "a single sign-in returned $sanity (see $OUT/sanity.json)"

# ------------------------------------------------------------- measure ----
export BENCH_USERS=$USERS BENCH_EMAIL_PREFIX=$PREFIX BENCH_PASSWORD=$PASSWORD
export BENCH_THREADS=$STORM_THREADS BENCH_READ_PATH=$READ_PATH BENCH_READ_DELAY_MS=$READ_DELAY_MS

storm() { # OUTPUT SECONDS
    timeout $(($2 + 60)) wrk -t"$STORM_THREADS" -c"$STORM_CONNECTIONS" -d"$2s" --timeout 10s --latency \
        -s "$WRK_DIR/token.lua" "$BASE" >"$1" 2>&1
}
probe() { # OUTPUT SECONDS
    timeout $(($2 + 60)) wrk -t1 -c"$READ_CONNECTIONS" -d"$2s" --timeout 10s --latency \
        -s "$WRK_DIR/read.lua" "$BASE" >"$1" 2>&1
}
storm_and_probe() { # STORM_OUTPUT PROBE_OUTPUT: the probe runs inside the storm
    local storm_pid
    storm "$1" "$DURATION" &
    storm_pid=$!
    sleep 1
    probe "$2" "$PROBE_IN_STORM" || { wait "$storm_pid"; return 1; }
    wait "$storm_pid"
}
hash_cost() { # OUTPUT [THREADS]: one at a time, then THREADS (default: one per core) at once
    timeout 600 "$HASH_COST" "$HASH_ITERATIONS" "${2:-$CORES}" "$HASH_PER_THREAD" \
        "$ARGON2_MEMORY_KIB" "$ARGON2_PASSES" >"$1" 2>&1
}
alive() {
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server died (see $OUT/server.log)"
}

# Other people's work that starts in the middle of a measurement skews it as
# much as work already running (this machine is shared), so each measurement
# also accounts for the CPU the machine spent during it: the server's, the
# measuring processes' (wrk, hash_cost), and the rest. Above OTHER_MAX % of
# the machine going to the rest, the measurement is repeated (at most
# MAX_ATTEMPTS times; then the last one is kept and counted as disturbed).
# With PostgreSQL the database's own processes are part of "the rest".
OTHER_MAX=10
[ -n "$POSTGRES_URL" ] && OTHER_MAX=30
MAX_ATTEMPTS=4
repeated=0
disturbed=0
# measure LABEL COMMAND...: runs COMMAND as above. Leaves, for the kept
# attempt, M_TOTAL (machine ticks elapsed), M_BUSY, M_STEAL, M_IOWAIT, M_SERVER and
# M_OURS (ticks of COMMAND's processes).
measure() {
    local label=$1 attempt b0 s0 t0 w0 b1 s1 t1 w1 p0 p1 other
    shift
    for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
        wait_quiet "$label"
        p0=$(proc_ticks "$SERVER_PID")
        read -r b0 s0 t0 w0 < <(machine_ticks)
        (
            "$@" || exit 1
            # The CPU of this subshell's finished children: everything COMMAND ran.
            awk '{ print $16 + $17 }' "/proc/$BASHPID/stat" >"$OUT/$label.ticks"
        ) || die "$label failed (see $OUT/$label*.txt)"
        read -r b1 s1 t1 w1 < <(machine_ticks)
        p1=$(proc_ticks "$SERVER_PID")
        alive
        M_TOTAL=$((t1 - t0)) M_BUSY=$((b1 - b0)) M_STEAL=$((s1 - s0)) M_IOWAIT=$((w1 - w0)) M_SERVER=$((p1 - p0))
        M_OURS=$(cat "$OUT/$label.ticks")
        other=$(calc "100 * ($M_BUSY - $M_SERVER - $M_OURS) / $M_TOTAL")
        if awk -v o="$other" -v m="$OTHER_MAX" 'BEGIN { exit !(o <= m) }'; then
            echo "$label $other kept" >>"$OUT/other-work.txt"
            return 0
        fi
        if [ "$attempt" -lt "$MAX_ATTEMPTS" ]; then
            log "  $label: $(fmt 0 "$other") % of the machine went to other work meanwhile; measuring again"
            repeated=$((repeated + 1))
        fi
    done
    log "  $label: still disturbed ($(fmt 0 "$other") % other work) after $MAX_ATTEMPTS attempts; keeping it"
    echo "$label $other disturbed" >>"$OUT/other-work.txt"
    disturbed=$((disturbed + 1))
}
share() { calc "100 * $1 / $M_TOTAL"; }

log "warm-up: 5 s storm"
storm "$OUT/warmup.txt" 5 || die "wrk (warm-up) failed (see $OUT/warmup.txt)"
alive

PROBE_IN_STORM=$((DURATION - 2))
for rep in $(seq 1 "$REPS"); do
    log "run $rep/$REPS: read probe, idle (${DURATION} s)"
    measure "idle-$rep" probe "$OUT/idle-$rep.txt" "$DURATION"

    # The hash cost brackets the storm: on a shared host one hash's time moves
    # by ±15 % from one second or minute to the next, so the ceiling is
    # measured right before and right after.
    log "run $rep/$REPS: hash cost ($HASH_ITERATIONS one at a time, then $HASH_PER_THREAD x $CORES at once; server idle)"
    measure "hash-$rep" hash_cost "$OUT/hash-$rep.txt"
    log "  verify mean $(kv "$OUT/hash-$rep.txt" verify_ms_mean) ms," \
        "$CORES at a time $(kv "$OUT/hash-$rep.txt" parallel_verifies_per_sec)/s"

    log "run $rep/$REPS: sign-in storm alone (${DURATION} s)"
    measure "storm-$rep" storm "$OUT/storm-$rep.txt" "$DURATION"
    requests=$(field "$OUT/storm-$rep.txt" requests)
    calc "$M_SERVER * 1000 / $CLK_TCK / $requests" >"$OUT/server-cpu-ms-$rep.txt"
    share "$M_BUSY" >"$OUT/machine-busy-$rep.txt"
    share "$M_SERVER" >"$OUT/server-share-$rep.txt"
    share "$M_STEAL" >"$OUT/machine-steal-$rep.txt"
    share "$M_IOWAIT" >"$OUT/machine-iowait-$rep.txt"
    share "$M_OURS" >"$OUT/wrk-share-$rep.txt"
    share "($M_BUSY - $M_SERVER - $M_OURS)" >"$OUT/other-share-$rep.txt"

    log "run $rep/$REPS: hash cost again ($HASH_ITERATIONS one at a time; server idle)"
    measure "hash-after-$rep" hash_cost "$OUT/hash-after-$rep.txt" 0
    hash_ms_rep=$(calc "($(kv "$OUT/hash-$rep.txt" verify_ms_mean) + $(kv "$OUT/hash-after-$rep.txt" verify_ms_mean)) / 2")
    echo "$hash_ms_rep" >"$OUT/hash-ms-$rep.txt"
    calc "$CORES * 1000 / $hash_ms_rep" >"$OUT/ceiling-$rep.txt"
    calc "100 * $(field "$OUT/storm-$rep.txt" rps) / $(cat "$OUT/ceiling-$rep.txt")" >"$OUT/pct-$rep.txt"
    log "  verify mean $(kv "$OUT/hash-after-$rep.txt" verify_ms_mean) ms;" \
        "storm $(field "$OUT/storm-$rep.txt" rps)/s = $(fmt 1 "$(cat "$OUT/pct-$rep.txt")") % of this repetition's ceiling"

    log "run $rep/$REPS: storm + read probe (probe ${PROBE_IN_STORM} s inside a ${DURATION} s storm)"
    measure "both-$rep" storm_and_probe "$OUT/both-storm-$rep.txt" "$OUT/both-read-$rep.txt"

    log "  read p99 idle $(field "$OUT/idle-$rep.txt" p99_us) us, in storm $(field "$OUT/both-read-$rep.txt" p99_us) us;" \
        "server CPU/sign-in $(cat "$OUT/server-cpu-ms-$rep.txt") ms"
done

curl -fsS --max-time 5 "$BASE/healthz" >/dev/null || die "GET /healthz failed after the runs"

# Every sign-in above used the right password, so no account should be left
# with failed sign-ins counted. wrk drops its in-flight requests when a run
# ends; this shows what such abandoned sign-ins leave behind (SQLite only:
# read with Python's sqlite3, read-only, while the server runs).
stale_failures="not checked (PostgreSQL, or no python3)"
if [ -z "$POSTGRES_URL" ] && command -v python3 >/dev/null 2>&1; then
    stale_failures=$(timeout 30 python3 - "$WORK/data/basalt.db" "$PREFIX" <<'PY' 2>/dev/null || echo "check failed"
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
n, top, locked = db.execute(
    "SELECT COUNT(*), COALESCE(MAX(failed_logins), 0), "
    "COALESCE(SUM(locked_until IS NOT NULL), 0) FROM identity_users "
    "WHERE email_normalized LIKE ? AND failed_logins > 0",
    (sys.argv[2] + "%",),
).fetchone()
print(f"{n} of the seeded accounts (highest count {top}; {locked} locked)")
PY
)
fi
log "accounts left with failed sign-ins counted: $stale_failures"

# Stop the server now (SIGTERM), so that its shutdown is part of the record.
kill -TERM "$SERVER_PID"
stopped=no
for _ in $(seq 1 80); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then stopped=yes; break; fi
    sleep 0.5
done
if [ "$stopped" = yes ]; then
    wait "$SERVER_PID" 2>/dev/null && server_exit=0 || server_exit=$?
    SERVER_PID=""
else
    server_exit="still running 40 s after SIGTERM"
fi
log "server stopped (exit status $server_exit)"

# -------------------------------------------------------------- results ----
hash_params=$(kv "$OUT/hash-1.txt" params)
[ -z "$ARGON2" ] || hash_params="**$hash_params, not the default**"
hash_ms=$(cat "$OUT"/hash-ms-*.txt | median)
ceiling=$(cat "$OUT"/ceiling-*.txt | median)
parallel_hash_rate=$(for r in $(seq 1 "$REPS"); do kv "$OUT/hash-$r.txt" parallel_verifies_per_sec; done | median)
# The method of the runs up to 2026-12-02 (session 6), for comparison: the
# median storm against a ceiling from the median single verification,
# measured only before the storms.
hash_ms_median_before=$(for r in $(seq 1 "$REPS"); do kv "$OUT/hash-$r.txt" verify_ms_median; done | median)
wrk_share=$(cat "$OUT"/wrk-share-*.txt | median)
other_share=$(cat "$OUT"/other-share-*.txt | median)
background_median=$(awk '{ print $2 }' "$OUT/background.txt" | median)
background_max=$(awk '{ print $2 }' "$OUT/background.txt" | sort -g | tail -n1)
other_median=$(awk '$3 == "kept" || $3 == "disturbed" { print $2 }' "$OUT/other-work.txt" | median)
other_max=$(awk '$3 == "kept" || $3 == "disturbed" { print $2 }' "$OUT/other-work.txt" | sort -g | tail -n1)
med() { # PATTERN KEY: median of KEY over the files matching PATTERN
    local f
    for f in $1; do field "$f" "$2"; done | median
}
sum() { # PATTERN KEY
    local f
    for f in $1; do field "$f" "$2"; done | awk '{ s += $1 } END { print s + 0 }'
}
storm_rps=$(med "$OUT/storm-[0-9]*.txt" rps)
both_rps=$(med "$OUT/both-storm-[0-9]*.txt" rps)
idle_p50=$(med "$OUT/idle-[0-9]*.txt" p50_us)
idle_p99=$(med "$OUT/idle-[0-9]*.txt" p99_us)
both_p50=$(med "$OUT/both-read-[0-9]*.txt" p50_us)
both_p99=$(med "$OUT/both-read-[0-9]*.txt" p99_us)
idle_rps=$(med "$OUT/idle-[0-9]*.txt" rps)
server_cpu_ms=$(cat "$OUT"/server-cpu-ms-*.txt | median)
machine_busy=$(cat "$OUT"/machine-busy-*.txt | median)
server_share=$(cat "$OUT"/server-share-*.txt | median)
machine_steal=$(cat "$OUT"/machine-steal-*.txt | median)
machine_iowait=$(cat "$OUT"/machine-iowait-*.txt | median)
hash_core_ms=$(calc "$CORES * 1000 / $parallel_hash_rate")
pct=$(cat "$OUT"/pct-*.txt | median)
pct_unpaired=$(calc "100 * $storm_rps * $hash_ms_median_before / ($CORES * 1000)")
pct_parallel=$(for r in $(seq 1 "$REPS"); do
    calc "100 * $(field "$OUT/storm-$r.txt" rps) / $(kv "$OUT/hash-$r.txt" parallel_verifies_per_sec)"; done | median)
parallel_pct=$(for r in $(seq 1 "$REPS"); do
    calc "100 * $(kv "$OUT/hash-$r.txt" parallel_verifies_per_sec) / $(cat "$OUT/ceiling-$r.txt")"; done | median)
ratio=$(calc "$both_p99 / $idle_p99")
all="$OUT/storm-[0-9]*.txt $OUT/both-storm-[0-9]*.txt $OUT/idle-[0-9]*.txt $OUT/both-read-[0-9]*.txt"
errors_non2xx=$(sum "$all" non2xx)
errors_socket=$(sum "$all" socket_errors)
errors_timeout=$(sum "$all" timeouts)
statuses=$(for f in $all; do field "$f" statuses | tr ',' '\n'; done \
    | awk -F: '$2 != "" { n[$1] += $2 } END { for (s in n) printf "%s %s\n", s, n[s] }' | sort -n \
    | awk '{ printf "%s%s: %s", (NR > 1 ? ", " : ""), $1, $2 }')
server_warnings=$(tail -n +"$((ready_lines + 1))" "$OUT/server.log" | grep -cE ' (WARN|ERROR) ' || true)
warning_sample=$(tail -n +"$((ready_lines + 1))" "$OUT/server.log" | grep -E ' (WARN|ERROR) ' \
    | sed -E 's/^[^ ]+ +//' | cut -c1-160 | sort | uniq -c | sort -rn | head -n 3 || true)

verdict() { # OK? -> met / not met
    if [ "$1" = 1 ]; then echo "**met**"; else echo "**not met**"; fi
}
goal1=$(verdict "$(awk -v p="$pct" -v g="$THROUGHPUT_GOAL_PCT" 'BEGIN { print (p >= g) ? 1 : 0 }')")
goal2=$(verdict "$(awk -v r="$ratio" -v g="$P99_GOAL_RATIO" 'BEGIN { print (r <= g) ? 1 : 0 }')")
ms() { fmt "$1" "$(calc "$2 / 1000")"; }

SECTION_FILE="$OUT/section.md"
{
    echo "<!-- bench:$SECTION:begin (written by bench/run.sh; edits here are overwritten) -->"
    echo "## Identity: sign-in"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bash bench/run.sh\`: each measurement run $REPS times,"
    echo "medians reported (raw output was in \`bench/out/$STAMP/\`, which git ignores)."
    echo
    echo "- **Machine:** $machine."
    echo "- **Code:** $code_desc; release build ($(release_profile "$SRC")); database: $database."
    echo "- **Server:** default configuration ($hash_params; \`max_concurrent_hashes\`"
    echo "  = $hash_permits; Tokio's default runtime) except sign-in and registration rate limits and the"
    echo "  lockout threshold raised to 1,000,000, and log level \`warn\`."
    echo "- **Hash cost:** \`examples/hash_cost.rs\` times $HASH_ITERATIONS sequential \`Passwords::verify\` calls (the"
    echo "  server's own code path: blocking pool, PHC parsing, one Argon2id computation), in a separate"
    echo "  process while the server sits idle, just before each storm and again just after it. The"
    echo "  repetition's time per hash is the mean over both (total time / count: a core hashing back to"
    echo "  back completes 1 / mean per second), its **ceiling** is $CORES cores / that time, and its result"
    echo "  is its storm's rate against its own ceiling; the table gives the medians of those. Before"
    echo "  the storm it also runs $CORES at a time ($HASH_PER_THREAD each) for the parallel rate."
    echo "- **Shared machine:** before each measurement the harness samples the machine for 2 s and waits"
    echo "  (up to $QUIET_BUDGET s in all) while more than $QUIET_PCT % of it is busy with other work; after it,"
    echo "  it repeats the measurement (up to $MAX_ATTEMPTS attempts) if more than $OTHER_MAX % of the machine's CPU went"
    echo "  to processes other than the server and the load generator meanwhile."
    echo "- **Storm:** $USERS seeded users; \`wrk -t$STORM_THREADS -c$STORM_CONNECTIONS -d${DURATION}s\` POSTs"
    echo "  \`{\"email\",\"password\"}\` to \`/api/auth/token\`, rotating over the users (\`bench/wrk/token.lua\`),"
    echo "  after a 5 s warm-up; wrk runs on the same $CORES cores."
    echo "- **Read probe:** \`GET $READ_PATH\`, \`wrk -t1 -c$READ_CONNECTIONS\`, each connection pausing"
    echo "  $READ_DELAY_MS ms between requests (\`bench/wrk/read.lua\`; ≈ $(fmt 0 "$idle_rps") req/s), ${DURATION} s idle, then"
    echo "  ${PROBE_IN_STORM} s inside a ${DURATION} s storm. Paced so that the probe measures latency instead of"
    echo "  adding its own saturating load; wrk times each request from send to response."
    echo
    echo "| measure | median |"
    echo "| --- | --- |"
    echo "| argon2id verification, one at a time (mean, before and after the storm) | $(fmt 2 "$hash_ms") ms |"
    echo "| **ceiling** = $CORES cores / time per hash | **$(fmt 1 "$ceiling") sign-ins/s** |"
    echo "| argon2id verifications, $CORES at a time, no server | $(fmt 1 "$parallel_hash_rate")/s (median per run: $(fmt 0 "$parallel_pct") % of its ceiling) |"
    echo "| **sign-ins/s**, storm alone | **$(fmt 1 "$storm_rps")/s** |"
    echo "| **% of ceiling** (median of the column \"% of ceiling\" below: each storm against its own run's ceiling) | **$(fmt 1 "$pct") %** (goal ≥ $THROUGHPUT_GOAL_PCT %) |"
    echo "| the same by the method of earlier runs: median storm against $CORES cores / the median single verification before the storms ($(fmt 2 "$hash_ms_median_before") ms) | $(fmt 1 "$pct_unpaired") % |"
    echo "| % of the parallel hash rate | $(fmt 1 "$pct_parallel") % |"
    echo "| sign-ins/s, storm with the read probe | $(fmt 1 "$both_rps")/s |"
    echo "| core time per hash when $CORES run at once ($CORES / the rate above) | $(fmt 2 "$hash_core_ms") ms |"
    echo "| server CPU time per sign-in | $(fmt 2 "$server_cpu_ms") ms |"
    echo "| machine CPU during the storm alone: busy (server / wrk / rest: kernel, other processes, PostgreSQL if used); idle waiting for the disk; stolen by the hypervisor | $(fmt 0 "$machine_busy") % ($(fmt 0 "$server_share") / $(fmt 0 "$wrk_share") / $(pct0 "$other_share") %); $(fmt 1 "$machine_iowait") %; $(fmt 1 "$machine_steal") % |"
    echo "| read p50 / p99, idle | $(ms 2 "$idle_p50") / $(ms 2 "$idle_p99") ms |"
    echo "| read p50 / p99, during the storm | $(ms 2 "$both_p50") / $(ms 2 "$both_p99") ms |"
    echo "| **p99 ratio** storm / idle | **$(fmt 1 "$ratio") ×** (goal ≤ $P99_GOAL_RATIO ×) |"
    echo "| responses by status, all runs | $statuses |"
    echo "| errors: non-2xx / socket / timeouts, all runs | $errors_non2xx / $errors_socket / $errors_timeout |"
    echo "| server WARN/ERROR log lines during the runs | $server_warnings |"
    echo "| server exit status after SIGTERM | $server_exit |"
    echo "| other people's work on the machine: just before / during the kept measurements | median $(pct0 "$background_median") % / $(pct0 "$other_median") %, max $(pct0 "$background_max") % / $(pct0 "$other_max") %; waited $quiet_waited s for quiet, repeated $repeated disturbed measurements, kept $disturbed still disturbed |"
    echo "| jobs left queued after seeding (verification mails) | $jobs_left |"
    echo "| accounts left with failed sign-ins counted after the runs, though every password was right | $stale_failures |"
    echo
    echo "Per run:"
    echo
    echo "| run | verify ms, mean before / after | ceiling/s | $CORES-at-a-time hashes/s | sign-ins/s | % of ceiling | server CPU ms/sign-in | read p99 idle ms | read p99 in storm ms |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for r in $(seq 1 "$REPS"); do
        echo "| $r | $(kv "$OUT/hash-$r.txt" verify_ms_mean) / $(kv "$OUT/hash-after-$r.txt" verify_ms_mean)" \
            "| $(fmt 1 "$(cat "$OUT/ceiling-$r.txt")") | $(kv "$OUT/hash-$r.txt" parallel_verifies_per_sec)" \
            "| $(field "$OUT/storm-$r.txt" rps) | $(fmt 1 "$(cat "$OUT/pct-$r.txt")") | $(fmt 2 "$(cat "$OUT/server-cpu-ms-$r.txt")")" \
            "| $(ms 2 "$(field "$OUT/idle-$r.txt" p99_us)") | $(ms 2 "$(field "$OUT/both-read-$r.txt" p99_us)") |"
    done
    echo
    echo "Goals:"
    echo
    echo "- Sign-in throughput ≥ $THROUGHPUT_GOAL_PCT % of \`cores / time-per-hash\`: $goal1 ($(fmt 1 "$pct") %)."
    echo "- Read p99 during a sign-in storm ≤ $P99_GOAL_RATIO × its idle p99: $goal2 ($(fmt 1 "$ratio") ×)."
    if [ -n "$warning_sample" ]; then
        echo
        echo "Most frequent server log lines at WARN/ERROR during the runs:"
        echo
        echo '```text'
        echo "$warning_sample"
        echo '```'
    fi
    if [ -f "$BENCH_DIR/notes/$SECTION.md" ]; then
        echo
        cat "$BENCH_DIR/notes/$SECTION.md"
    fi
    echo "<!-- bench:$SECTION:end -->"
} >"$SECTION_FILE"

# Replace this scenario's section, keep everything else.
if [ ! -f "$REPORT" ]; then
    cat >"$REPORT" <<'EOF'
# Benchmarks

Performance of Basalt, measured on a described machine with a load generator against the real
server and seeded data. Tests never assert performance; this file records measurements. Each
scenario's section is rewritten by the harness; every number is a median of repeated runs.

How to run: `bash bench/run.sh` (options: `bash bench/run.sh --help`; it needs root or `wrk`
already installed, and a few minutes for the release build).
EOF
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
log "wrote the \"Identity: sign-in\" section of $REPORT"
cat "$SECTION_FILE"
