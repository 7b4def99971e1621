#!/usr/bin/env bash
# Basalt's benchmark harness. Scenario: the shop (issue 17).
#
#   bash bench/shop.sh [--reps N] [--buyers N] [--units N] [--products N]
#                      [--articles N] [--duration SECS] [--postgres URL]
#                      [--localstripe-reps N] [--report FILE] [--worktree]
#                      [--no-build] [--quiet-budget SECS]
#
# Defaults: 5 repetitions, 500 buyers for 100 units, 1,000 products of 3
# variants and 1,000 blog articles, 10 s per read measurement, SQLite, 2
# extra repetitions through localstripe, report into BENCHMARKS.md, the
# committed code (HEAD, exported to a folder of its own; --worktree measures
# the working tree). --no-build uses the binaries of the last build
# (CARGO_TARGET_DIR/bench-shop-bin/). --quiet-budget: how long, in all,
# to wait for the machine to be quiet before measurements (default 600 s;
# then it measures anyway, and the load it saw is in the report).
#
# What it does, in order (every wait and loop is bounded in count and time):
#  1. installs wrk with apt if it is missing; builds `basalt` twice in
#     release mode (CARGO_TARGET_DIR, default /work/target-bench): as
#     shipped (the oversell guard: one conditional decrement, and an early
#     "sold out" answer without a transaction), and with the cargo feature
#     `bench-naive-checkout` (benchmark-only, off by default): the naive
#     baseline, `SELECT … FOR UPDATE` on the variant row, the stock checked
#     in Rust, then an UPDATE, in every checkout (one row lock per checkout);
#  2. starts a minimal stand-in for Stripe's `POST /v1/payment_intents`
#     (bench/shop/stripe_standin.py, Stripe's published contract for that
#     one call) and, if the shop's test venv has it, localstripe;
#  3. starts `basalt serve` (loopback, port 0, a fresh temporary data dir;
#     SQLite, or --postgres URL, which must point at a throw-away
#     database), default configuration except log level warn, Stripe
#     pointed at the stand-in, 19 % tax in DE and 5.00 EUR shipping (the
#     shop's tests' configuration);
#  4. seeds an admin (registered, then promoted in the database, as the
#     tests do), PRODUCTS products of 3 variants (S, M, L) through
#     POST /api/shop/products, and ARTICLES blog articles through
#     POST /api/articles;
#  5. N times, after waiting for the machine to be quiet:
#     - catalog reads: `wrk -t2 -c16` GET /api/shop/products and
#       GET /api/articles (anonymous, first page of 20), back to back;
#     - flash sale, guard then naive, each on a freshly started server:
#       a new product of one SKU with UNITS units; BUYERS carts with one
#       unit each (untimed); then all BUYERS checkouts at once
#       (bench/shop/flash.py: one thread and keep-alive connection per
#       buyer, a barrier, `Idempotency-Key` per checkout), and the counts
#       read back from the database: units sold (order lines), stock left,
#       variants with negative stock, units reserved;
#     and `uptime` before each measurement;
#  6. stops the servers with SIGTERM and writes the medians and ratios into
#     BENCHMARKS.md between this backend's marker comments (shop-sqlite or
#     shop-postgres), the PostgreSQL one followed by bench/notes/shop.md
#     (the hand-written analysis of both). Raw output goes to
#     bench/out/<timestamp>/ (ignored by git).
#
# Traffic goes to 127.0.0.1 only. Nothing here asserts a performance goal:
# it measures and reports.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"
WRK_DIR="$BENCH_DIR/wrk"
REPORT="$ROOT/BENCHMARKS.md"
SECTION=shop  # + -sqlite or -postgres below: one section per backend

REPS=5
BUYERS=500
UNITS=100
PRODUCTS=1000
ARTICLES=1000
DURATION=10
POSTGRES_URL=""
LOCALSTRIPE_REPS=2
SOURCE=head
BUILD=1
QUIET_BUDGET=600
READ_THREADS=2
READ_CONNECTIONS=16
PASSWORD="correct horse battery staple"
FLASH_GOAL_RATIO=5
READ_GOAL_PCT=50

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
        --buyers) BUYERS=${2:?}; shift 2 ;;
        --units) UNITS=${2:?}; shift 2 ;;
        --products) PRODUCTS=${2:?}; shift 2 ;;
        --articles) ARTICLES=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --postgres) POSTGRES_URL=${2:?}; shift 2 ;;
        --localstripe-reps) LOCALSTRIPE_REPS=${2:?}; shift 2 ;;
        --report) REPORT=${2:?}; shift 2 ;;
        --worktree) SOURCE=worktree; shift ;;
        --no-build) BUILD=0; shift ;;
        --quiet-budget) QUIET_BUDGET=${2:?}; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "bench: unknown argument $1" >&2; usage 2 ;;
    esac
done
num() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
num "$REPS" 1 20 || die "--reps must be 1..20"
num "$BUYERS" 2 2000 || die "--buyers must be 2..2000"
num "$UNITS" 1 "$((BUYERS - 1))" || die "--units must be 1..buyers-1"
num "$PRODUCTS" 1 20000 || die "--products must be 1..20000"
num "$ARTICLES" 20 20000 || die "--articles must be 20..20000"
num "$DURATION" 3 300 || die "--duration must be 3..300 seconds"
num "$LOCALSTRIPE_REPS" 0 20 || die "--localstripe-reps must be 0..20"
num "$QUIET_BUDGET" 0 7200 || die "--quiet-budget must be 0..7200 seconds"
case "$REPORT" in /*) ;; *) REPORT="$PWD/$REPORT" ;; esac

# The measured configuration is the default one plus the overrides below.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^BASALT_' || true)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
BIN_DIR="$CARGO_TARGET_DIR/bench-shop-bin"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$BENCH_DIR/out/$STAMP"
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }
. "$BENCH_DIR/lib.sh"

ensure_wrk
for tool in curl awk python3 cargo rustc uptime; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
PSQL=""
if [ -n "$POSTGRES_URL" ]; then
    PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | head -n1 || true)
    [ -n "$PSQL" ] || die "psql is required with --postgres"
fi

# ---------------------------------------------------------------- build ----
if [ "$BUILD" = 1 ]; then
    if [ "$SOURCE" = head ]; then
        export_head "$ROOT"
    else
        SRC=$ROOT
        code_desc="commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        if [ -n "$(git -C "$ROOT" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null || true)" ]; then
            code_desc="$code_desc + uncommitted changes (working tree)"
        fi
    fi
    mkdir -p "$BIN_DIR"
    log "building $SRC (release, as shipped; long the first time) -> $OUT/build.log"
    build_release "$SRC" "$OUT/build.log" -p basalt --bin basalt || die "build failed (see $OUT/build.log)"
    cp "$CARGO_TARGET_DIR/release/basalt" "$BIN_DIR/basalt-guard"
    log "building the naive baseline (--features bench-naive-checkout)"
    build_release "$SRC" "$OUT/build.log" -p basalt --bin basalt --features bench-naive-checkout \
        || die "build failed (see $OUT/build.log)"
    cp "$CARGO_TARGET_DIR/release/basalt" "$BIN_DIR/basalt-naive"
    echo "$code_desc" >"$BIN_DIR/code.txt"
else
    [ -x "$BIN_DIR/basalt-guard" ] && [ -x "$BIN_DIR/basalt-naive" ] || die "--no-build: no binaries in $BIN_DIR"
    code_desc="$(cat "$BIN_DIR/code.txt" 2>/dev/null || echo unknown) (--no-build: the last build's binaries)"
fi

QUIET_PCT=15
quiet_waited=0
CORES=$(nproc)
machine=$(describe_machine)
log "machine: $machine"

# -------------------------------------------------------------- servers ----
WORK=$(mktemp -d /tmp/basalt-bench-shop.XXXXXX)
SERVER_PID=""
STANDIN_PID=""
LOCALSTRIPE_PID=""
stop_pid() { # PID: SIGTERM, then (after 40 s) SIGKILL
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 80); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$?
    stop_pid "$SERVER_PID"
    stop_pid "$STANDIN_PID"
    stop_pid "$LOCALSTRIPE_PID"
    rm -rf "${WORK:?}"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # URL: until it answers at all (10 s)
    for _ in $(seq 1 40); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.25
    done
    return 1
}

STANDIN_PORT=$(free_port)
python3 "$BENCH_DIR/shop/stripe_standin.py" "$STANDIN_PORT" >"$OUT/standin.log" 2>&1 &
STANDIN_PID=$!
wait_http "http://127.0.0.1:$STANDIN_PORT/" || die "the Stripe stand-in did not start (see $OUT/standin.log)"
STANDIN_BASE="http://127.0.0.1:$STANDIN_PORT"

LOCALSTRIPE_BASE=""
VENV_PY="${BASALT_SHOP_PYTHON:-${XDG_CACHE_HOME:-$HOME/.cache}/basalt/shop-payments/venv/bin/python}"
if [ "$LOCALSTRIPE_REPS" -gt 0 ] && [ -x "$VENV_PY" ]; then
    LS_PORT=$(free_port)
    # As crates/basalt-testkit/src/stripe.rs starts it: no pickle on disk.
    (cd "$WORK" && "$VENV_PY" -c '
import sys
from aiohttp import web
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
' "$LS_PORT") >"$OUT/localstripe.log" 2>&1 &
    LOCALSTRIPE_PID=$!
    if wait_http "http://127.0.0.1:$LS_PORT/v1/balance"; then
        LOCALSTRIPE_BASE="http://127.0.0.1:$LS_PORT"
    else
        log "localstripe did not start (see $OUT/localstripe.log): its runs are skipped"
    fi
elif [ "$LOCALSTRIPE_REPS" -gt 0 ]; then
    log "no localstripe venv at $VENV_PY (bash scripts/test.sh makes it): its runs are skipped"
fi

database="SQLite (fresh file in a temporary folder)"
SECTION=$SECTION-sqlite BACKEND_NAME=SQLite
if [ -n "$POSTGRES_URL" ]; then
    SECTION=shop-postgres BACKEND_NAME=PostgreSQL
    database="PostgreSQL ($(echo "$POSTGRES_URL" | sed -E 's#//[^@/]*@#//#; s#\?.*##'))"
fi
mkdir -p "$WORK/data"
server_env() { # STRIPE_BASE
    echo BASALT_LISTEN=127.0.0.1:0
    echo "BASALT_DATA_DIR=$WORK/data"
    echo "BASALT_LOG_LEVEL=warn,basalt_platform::server=info"
    echo BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE=1000000
    echo BASALT_IDENTITY__RATE_LIMITS__REGISTER_PER_IP_PER_HOUR=1000000
    echo BASALT_SHOP__STRIPE__SECRET_KEY=sk_test_basalt
    echo "BASALT_SHOP__STRIPE__API_BASE=$1"
    echo BASALT_SHOP__TAX__RATES__DE=1900
    echo BASALT_SHOP__SHIPPING__FLAT_RATES__EUR=500
    [ -z "$POSTGRES_URL" ] || echo "BASALT_DATABASE_URL=$POSTGRES_URL"
}
start_server() { # BINARY STRIPE_BASE LOG: sets SERVER_PID, BASE
    local env_lines=()
    mapfile -t env_lines < <(server_env "$2")
    env "${env_lines[@]}" "$1" serve >"$3" 2>&1 &
    SERVER_PID=$!
    local port=""
    for _ in $(seq 1 120); do
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited at start (see $3)"
        port=$(grep -m1 -o 'listen=127\.0\.0\.1:[0-9]*' "$3" | cut -d: -f2 || true)
        [ -n "$port" ] && break
        sleep 0.5
    done
    [ -n "$port" ] || die "server did not report its port within 60 s (see $3)"
    BASE="http://127.0.0.1:$port"
    curl -fsS --max-time 5 "$BASE/healthz" >/dev/null || die "GET /healthz failed"
}
stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
}

# sql QUERY: one value (first column of the first row) from the database.
sql() {
    if [ -n "$POSTGRES_URL" ]; then
        "$PSQL" "$POSTGRES_URL" -XAtqc "$1"
    else
        python3 -c 'import sqlite3, sys
row = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30).execute(sys.argv[2]).fetchone()
print("" if row is None else row[0])' "$WORK/data/basalt.db" "$1"
    fi
}

# ----------------------------------------------------------------- seed ----
start_server "$BIN_DIR/basalt-guard" "$STANDIN_BASE" "$OUT/server-seed.log"
log "server at $BASE ($database); seeding"
RUN_ID=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
ADMIN="bench-shop-$RUN_ID@example.com"
code=$(curl -s -o "$OUT/register.json" -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' \
    -d "{\"email\":\"$ADMIN\",\"username\":\"bench-shop-$RUN_ID\",\"password\":\"$PASSWORD\"}" "$BASE/api/auth/register")
[ "$code" = 201 ] || die "registering the admin returned $code (see $OUT/register.json)"
sql "UPDATE identity_users SET role = 'admin' WHERE email_normalized = '$ADMIN'" >/dev/null
admin_token() {
    curl -s --max-time 30 -H 'Content-Type: application/json' \
        -d "{\"email\":\"$ADMIN\",\"password\":\"$PASSWORD\"}" "$BASE/api/auth/token" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
TOKEN=$(admin_token) || die "the admin could not sign in"
export BASE TOKEN RUN_ID

# PRODUCTS products of 3 variants each, 1,000 units of each variant.
seq 1 "$PRODUCTS" | xargs -P 4 -I{} sh -c '
    curl -s -o /dev/null -w "%{http_code}\n" --max-time 30 -H "Content-Type: application/json" \
        -H "Authorization: Bearer $TOKEN" "$BASE/api/shop/products" -d "{\"product\":{
        \"slug\":\"p-$RUN_ID-{}\",\"name\":\"Product {} of the benchmark\",
        \"description\":\"A *fine* thing, number {}, in three sizes. Cotton, washable at 40 degrees.\",
        \"variants\":[
          {\"sku\":\"P{}-S\",\"options\":{\"size\":\"S\"},\"prices\":[{\"amount\":1990,\"currency\":\"EUR\"}],\"stock\":1000},
          {\"sku\":\"P{}-M\",\"options\":{\"size\":\"M\"},\"prices\":[{\"amount\":2090,\"currency\":\"EUR\"}],\"stock\":1000},
          {\"sku\":\"P{}-L\",\"options\":{\"size\":\"L\"},\"prices\":[{\"amount\":2190,\"currency\":\"EUR\"}],\"stock\":1000}]}}"' \
    >"$OUT/seed-products.txt"
seeded=$(grep -c '^201$' "$OUT/seed-products.txt" || true)
[ "$seeded" -eq "$PRODUCTS" ] || { sort "$OUT/seed-products.txt" | uniq -c >&2; die "only $seeded of $PRODUCTS products created"; }
seq 1 "$ARTICLES" | xargs -P 4 -I{} sh -c '
    curl -s -o /dev/null -w "%{http_code}\n" --max-time 30 -H "Content-Type: application/json" \
        -H "Authorization: Token $TOKEN" "$BASE/api/articles" -d "{\"article\":{
        \"title\":\"Benchmark article {} $RUN_ID\",\"description\":\"An article of the shop benchmark.\",
        \"body\":\"## Article {}\\n\\nA paragraph with **bold** text and a [link](https://example.com/{}).\",
        \"tagList\":[\"bench\",\"shop\"]}}"' >"$OUT/seed-articles.txt"
seeded=$(grep -c '^201$' "$OUT/seed-articles.txt" || true)
[ "$seeded" -eq "$ARTICLES" ] || { sort "$OUT/seed-articles.txt" | uniq -c >&2; die "only $seeded of $ARTICLES articles created"; }
log "seeded $PRODUCTS products ($((PRODUCTS * 3)) variants) and $ARTICLES articles"
for path in /api/shop/products /api/articles; do
    code=$(curl -s -o "$OUT/sanity.json" -w '%{http_code}' --max-time 10 "$BASE$path")
    [ "$code" = 200 ] || die "GET $path returned $code"
done
products_page_bytes=$(curl -s --max-time 10 "$BASE/api/shop/products" | wc -c)
articles_page_bytes=$(curl -s --max-time 10 "$BASE/api/articles" | wc -c)
stop_server

# ------------------------------------------------------------- measure ----
read_wrk() { # OUTPUT PATH
    BENCH_PATH=$2 timeout $((DURATION + 60)) wrk -t"$READ_THREADS" -c"$READ_CONNECTIONS" -d"${DURATION}s" \
        --timeout 10s --latency -s "$WRK_DIR/shop-get.lua" "$BASE" >"$1" 2>&1
}
# flash LABEL BINARY STRIPE_BASE: one flash sale on a fresh server; writes
# $OUT/flash-LABEL.json (the driver's) and flash-LABEL.db (counts read back).
flash() {
    local label=$1 sku
    sku="HOT-$RUN_ID-$label"
    start_server "$2" "$3" "$OUT/server-flash-$label.log"
    TOKEN=$(admin_token) || die "the admin could not sign in"
    code=$(curl -s -o "$OUT/flash-$label-product.json" -w '%{http_code}' --max-time 30 \
        -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" "$BASE/api/shop/products" \
        -d "{\"product\":{\"slug\":\"hot-$RUN_ID-$label\",\"name\":\"The hot one\",\"description\":\"Flash sale.\",
            \"variants\":[{\"sku\":\"$sku\",\"options\":{},\"prices\":[{\"amount\":2500,\"currency\":\"EUR\"}],\"stock\":$UNITS}]}}")
    [ "$code" = 201 ] || die "creating $sku returned $code"
    wait_quiet "flash-$label"
    echo "flash-$label $(uptime)" >>"$OUT/uptime.txt"
    timeout 600 python3 "$BENCH_DIR/shop/flash.py" "$BASE" "$sku" "$BUYERS" "$OUT/flash-$label.json" \
        >"$OUT/flash-$label.txt" 2>&1 || die "flash sale $label failed (see $OUT/flash-$label.txt)"
    {
        echo "sold=$(sql "SELECT COALESCE(SUM(l.quantity), 0) FROM shop_order_lines l JOIN shop_orders o ON o.id = l.order_id WHERE l.sku = '$sku' AND o.status <> 'cancelled'")"
        echo "orders=$(sql "SELECT COUNT(*) FROM shop_order_lines WHERE sku = '$sku'")"
        echo "stock=$(sql "SELECT stock FROM shop_variants WHERE sku = '$sku'")"
        echo "negative=$(sql "SELECT COUNT(*) FROM shop_variants WHERE stock < 0")"
        echo "reserved=$(sql "SELECT COALESCE(SUM(quantity), 0) FROM shop_reservations WHERE sku = '$sku'")"
        echo "with_payment=$(sql "SELECT COUNT(*) FROM shop_orders o JOIN shop_order_lines l ON l.order_id = o.id WHERE l.sku = '$sku' AND o.provider_id IS NOT NULL")"
    } >"$OUT/flash-$label.db"
    grep -ci 'WARN\|ERROR' "$OUT/server-flash-$label.log" >"$OUT/flash-$label.warn" || true
    stop_server
}
jq_py() { python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k] if not isinstance(v, list) else v[int(k)]
print(v)' "$1" "$2"; }
dbv() { awk -F= -v k="$2" '$1 == k { print $2 }' "$1"; }

for r in $(seq 1 "$REPS"); do
    log "repetition $r of $REPS"
    start_server "$BIN_DIR/basalt-guard" "$STANDIN_BASE" "$OUT/server-read-$r.log"
    curl -s -o /dev/null "$BASE/api/shop/products"; curl -s -o /dev/null "$BASE/api/articles"
    # Alternate the order, so that neither always runs first.
    if [ $((r % 2)) = 1 ]; then order="shop blog"; else order="blog shop"; fi
    for which in $order; do
        path=/api/shop/products
        [ "$which" = blog ] && path=/api/articles
        wait_quiet "read-$which-$r"
        echo "read-$which-$r $(uptime)" >>"$OUT/uptime.txt"
        read_wrk "$OUT/read-$which-$r.txt" "$path" || die "wrk $path failed"
        log "  GET $path: $(field "$OUT/read-$which-$r.txt" rps) req/s"
    done
    stop_server
    for variant in guard naive; do
        flash "$variant-$r" "$BIN_DIR/basalt-$variant" "$STANDIN_BASE"
        log "  flash sale ($variant, stand-in): $(jq_py "$OUT/flash-$variant-$r.json" checkouts_per_s) checkouts/s," \
            "p99 $(jq_py "$OUT/flash-$variant-$r.json" p99_ms) ms, $(cat "$OUT/flash-$variant-$r.db" | tr '\n' ' ')"
    done
done
if [ -n "$LOCALSTRIPE_BASE" ]; then
    for r in $(seq 1 "$LOCALSTRIPE_REPS"); do
        for variant in guard naive; do
            flash "ls-$variant-$r" "$BIN_DIR/basalt-$variant" "$LOCALSTRIPE_BASE"
            log "  flash sale ($variant, localstripe): $(jq_py "$OUT/flash-ls-$variant-$r.json" checkouts_per_s) checkouts/s," \
                "p99 $(jq_py "$OUT/flash-ls-$variant-$r.json" p99_ms) ms"
        done
    done
fi

# --------------------------------------------------------------- report ----
med_json() { # PREFIX KEY REPS
    for r in $(seq 1 "$3"); do jq_py "$OUT/flash-$1-$r.json" "$2"; done | median
}
shop_rps=$(for r in $(seq 1 "$REPS"); do field "$OUT/read-shop-$r.txt" rps; done | median)
blog_rps=$(for r in $(seq 1 "$REPS"); do field "$OUT/read-blog-$r.txt" rps; done | median)
shop_p99=$(for r in $(seq 1 "$REPS"); do field "$OUT/read-shop-$r.txt" p99_us; done | median)
blog_p99=$(for r in $(seq 1 "$REPS"); do field "$OUT/read-blog-$r.txt" p99_us; done | median)
read_pct=$(for r in $(seq 1 "$REPS"); do
    calc "100 * $(field "$OUT/read-shop-$r.txt" rps) / $(field "$OUT/read-blog-$r.txt" rps)"; done | median)
guard_rate=$(med_json guard checkouts_per_s "$REPS")
naive_rate=$(med_json naive checkouts_per_s "$REPS")
guard_p99=$(med_json guard p99_ms "$REPS")
naive_p99=$(med_json naive p99_ms "$REPS")
guard_sold_s=$(med_json guard sold_out_after_s "$REPS")
naive_sold_s=$(med_json naive sold_out_after_s "$REPS")
flash_ratio=$(for r in $(seq 1 "$REPS"); do
    calc "$(jq_py "$OUT/flash-guard-$r.json" checkouts_per_s) / $(jq_py "$OUT/flash-naive-$r.json" checkouts_per_s)"; done | median)
goal_flash=missed; awk -v x="$flash_ratio" -v g="$FLASH_GOAL_RATIO" 'BEGIN { exit !(x >= g) }' && goal_flash=met
goal_read=missed; awk -v x="$read_pct" -v g="$READ_GOAL_PCT" 'BEGIN { exit !(x >= g) }' && goal_read=met
ms() { fmt "$1" "$(calc "$2 / 1000")"; }
non2xx_reads=$(for f in "$OUT"/read-*.txt; do field "$f" non2xx; done | awk '{ s += $1 } END { print s + 0 }')
uptimes=$(awk '{ sub(/.*load average: /, ""); print }' "$OUT/uptime.txt" | awk -F', ' '{ print $1 }' | sort -g)
load_min=$(echo "$uptimes" | head -n1); load_max=$(echo "$uptimes" | tail -n1)
load_median=$(echo "$uptimes" | median)

# Correctness over every flash sale: all must hold.
correct_line() { # LABEL
    local db="$OUT/flash-$1.db" j="$OUT/flash-$1.json"
    echo "$(dbv "$db" sold) / $(dbv "$db" stock) / $(dbv "$db" negative) / $(jq_py "$j" created) / $(jq_py "$j" out_of_stock_409) / $(jq_py "$j" statuses | tr -d "{}' ")"
}
all_correct=yes
for db in "$OUT"/flash-*.db; do
    label=$(basename "$db" .db)
    [ "$(dbv "$db" sold)" = "$UNITS" ] && [ "$(dbv "$db" stock)" = 0 ] && [ "$(dbv "$db" negative)" = 0 ] \
        && [ "$(jq_py "$OUT/$label.json" created)" = "$UNITS" ] \
        && [ "$(jq_py "$OUT/$label.json" out_of_stock_409)" = "$((BUYERS - UNITS))" ] || all_correct=no
done

SECTION_FILE="$OUT/section.md"
{
    echo "<!-- bench:$SECTION:begin (written by bench/shop.sh; edits here are overwritten) -->"
    echo "## Shop on $BACKEND_NAME: flash sale and catalog reads"
    echo
    echo "Run of $(date -u '+%Y-%m-%d %H:%M') UTC, \`bench/out/$STAMP/\`, $code_desc; $REPS repetitions, medians."
    echo
    echo "- **Machine:** $machine. Load average (1 min) at the start of the measurements: median $load_median, $load_min to $load_max (\`uptime.txt\`)."
    echo "- **Server:** release build ($(release_profile "$ROOT")), $database, default configuration but log level warn, 19 % tax in DE, 5.00 EUR shipping, Stripe at a stand-in (below); server, load generator and database share the $CORES cores."
    echo "- **Flash sale:** one SKU with $UNITS units; $BUYERS anonymous buyers, each with a cart holding one unit (made before the clock starts), check out at the same moment (\`bench/shop/flash.py\`: a thread and a keep-alive connection per buyer, a barrier, a fresh \`Idempotency-Key\` each; the body of the shop's tests). Checkouts/s = $BUYERS / time from the barrier to the last answer; p99 over the $BUYERS checkouts. Each sale on a freshly started server, the guard and the baseline alternating."
    echo "- **Payment provider:** Basalt calls Stripe's \`POST /v1/payment_intents\` after its commit, for the $UNITS winners only. Measured through \`bench/shop/stripe_standin.py\`, a few lines of Python that follow Stripe's published contract for that one call (form body, Bearer \`sk_…\`, \`Idempotency-Key\` replays, a \`requires_payment_method\` PaymentIntent with \`client_secret\`), so that the database path is what is measured; localstripe separately ($([ -n "$LOCALSTRIPE_BASE" ] && echo "$LOCALSTRIPE_REPS repetitions" || echo "not run: no venv"))."
    echo "- **Naive baseline:** the same binary built with the benchmark-only cargo feature \`bench-naive-checkout\` (off by default): \`SELECT stock … FOR UPDATE\` on the variant row (SQLite: the transaction's write lock), the stock checked in Rust, then \`UPDATE … SET stock = \$1\`, and no early \"sold out\" answer: every checkout takes the row lock, as before Vendure's PR #4930."
    echo "- **Catalog reads:** $PRODUCTS products × 3 variants and $ARTICLES blog articles seeded through the API; \`wrk -t$READ_THREADS -c$READ_CONNECTIONS -d${DURATION}s\` on \`GET /api/shop/products\` ($products_page_bytes bytes, first page of 20) and \`GET /api/articles\` ($articles_page_bytes bytes, first page of 20), anonymous, back to back on the same server in each repetition, the order alternating."
    echo
    echo "| measure | median |"
    echo "| --- | --- |"
    echo "| **flash sale, guard (as shipped): checkouts/s** | **$(fmt 0 "$guard_rate")/s** (p99 $(fmt 0 "$guard_p99") ms; last unit sold after $(fmt 3 "$guard_sold_s") s) |"
    echo "| flash sale, naive baseline (row lock per checkout): checkouts/s | $(fmt 0 "$naive_rate")/s (p99 $(fmt 0 "$naive_p99") ms; last unit sold after $(fmt 3 "$naive_sold_s") s) |"
    echo "| **guard / naive** (median of the per-repetition ratios) | **$(fmt 2 "$flash_ratio") ×** (goal ≥ $FLASH_GOAL_RATIO ×: $goal_flash) |"
    if [ -n "$LOCALSTRIPE_BASE" ]; then
        echo "| flash sale through localstripe, guard / naive: checkouts/s | $(fmt 0 "$(med_json ls-guard checkouts_per_s "$LOCALSTRIPE_REPS")") / $(fmt 0 "$(med_json ls-naive checkouts_per_s "$LOCALSTRIPE_REPS")")/s (p99 $(fmt 0 "$(med_json ls-guard p99_ms "$LOCALSTRIPE_REPS")") / $(fmt 0 "$(med_json ls-naive p99_ms "$LOCALSTRIPE_REPS")") ms) |"
    fi
    echo "| every flash sale: exactly $UNITS sold, 0 stock left, no negative stock, $UNITS answered 201 and $((BUYERS - UNITS)) answered 409 \"out of stock\" | **$all_correct** |"
    echo "| **GET /api/shop/products** | **$(fmt 0 "$shop_rps") req/s** (p99 $(ms 1 "$shop_p99") ms) |"
    echo "| GET /api/articles, same run | $(fmt 0 "$blog_rps") req/s (p99 $(ms 1 "$blog_p99") ms) |"
    echo "| **products / articles** (median of the per-repetition ratios) | **$(fmt 0 "$read_pct") %** (goal ≥ $READ_GOAL_PCT %: $goal_read) |"
    echo "| non-2xx answers to the reads, all runs | $non2xx_reads |"
    echo
    echo "Per repetition (flash sales: checkouts/s, p99 ms; counts read back from the database: sold / stock left / variants with negative stock / 201s / 409 \"out of stock\" / statuses):"
    echo
    echo "| run | guard | guard counts | naive | naive counts | products req/s | articles req/s |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for r in $(seq 1 "$REPS"); do
        echo "| $r | $(fmt 0 "$(jq_py "$OUT/flash-guard-$r.json" checkouts_per_s)"), $(fmt 0 "$(jq_py "$OUT/flash-guard-$r.json" p99_ms)")" \
            "| $(correct_line "guard-$r") | $(fmt 0 "$(jq_py "$OUT/flash-naive-$r.json" checkouts_per_s)"), $(fmt 0 "$(jq_py "$OUT/flash-naive-$r.json" p99_ms)")" \
            "| $(correct_line "naive-$r") | $(fmt 0 "$(field "$OUT/read-shop-$r.txt" rps)") | $(fmt 0 "$(field "$OUT/read-blog-$r.txt" rps)") |"
    done
    if [ -n "$LOCALSTRIPE_BASE" ]; then
        for r in $(seq 1 "$LOCALSTRIPE_REPS"); do
            echo "| localstripe $r | $(fmt 0 "$(jq_py "$OUT/flash-ls-guard-$r.json" checkouts_per_s)"), $(fmt 0 "$(jq_py "$OUT/flash-ls-guard-$r.json" p99_ms)")" \
                "| $(correct_line "ls-guard-$r") | $(fmt 0 "$(jq_py "$OUT/flash-ls-naive-$r.json" checkouts_per_s)"), $(fmt 0 "$(jq_py "$OUT/flash-ls-naive-$r.json" p99_ms)")" \
                "| $(correct_line "ls-naive-$r") | | |"
        done
    fi
    # The hand-written analysis covers both backends: after the PostgreSQL section.
    if [ -f "$BENCH_DIR/notes/shop.md" ]; then
        echo
        if [ "$SECTION" = shop-postgres ]; then
            cat "$BENCH_DIR/notes/shop.md"
        else
            echo "What limits it: see the end of the PostgreSQL section (\`bench/notes/shop.md\`)."
        fi
    fi
    echo "<!-- bench:$SECTION:end -->"
} >"$SECTION_FILE"

if [ -f "$REPORT" ] && grep -q "^<!-- bench:$SECTION:begin" "$REPORT"; then
    awk -v begin="^<!-- bench:$SECTION:begin" -v end="^<!-- bench:$SECTION:end" -v file="$SECTION_FILE" '
        $0 ~ begin { while ((getline line < file) > 0) print line; skipping = 1; next }
        skipping && $0 ~ end { skipping = 0; next }
        !skipping { print }' "$REPORT" >"$OUT/BENCHMARKS.md.new"
    mv "$OUT/BENCHMARKS.md.new" "$REPORT"
else
    { echo; cat "$SECTION_FILE"; } >>"$REPORT"
fi
log "wrote the \"Shop\" section of $REPORT"
cat "$SECTION_FILE"
