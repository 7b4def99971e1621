#!/usr/bin/env bash
# Basalt's benchmark harness. Scenario: the blog (RealWorld API) on a
# realistic data set, on three stacks ("backends"):
#   sqlite       the embedded default: SQLite, in-process cache, rate limits
#                and event bus;
#   postgres     PostgreSQL, with the same in-process adapters;
#   distributed  PostgreSQL, Redis (cache, rate limits) and RabbitMQ (domain
#                events), as each node of a cluster runs: compared with
#                `postgres`, the cost per request of the distributed adapters.
#
#   bash bench/blog.sh [--reps N] [--duration SECS] [--warmup SECS]
#                      [--connections N] [--sqlite-only | --postgres-only |
#                      --backends "B ..."] [--only SCENARIO,...] [--report FILE]
#                      [--worktree] [--small] [--no-build] [--rerender DIR]
#
# Defaults: 3 repetitions of 10 s per scenario, wrk -t2 -c32, the three
# backends, every scenario, the committed code (HEAD, exported to a folder
# of its own; --worktree measures the working tree instead, uncommitted
# edits included). A full run takes about 35 minutes once the release build
# exists.
#
# Scenarios (names for --only): ceiling (GET /healthz: constant JSON, no
# database), tags, list (GET /api/articles, anonymous), list-tag (?tag= the
# most used tag), list-author (?author= the most prolific author),
# list-offset (?offset=5000), list-auth, list-auth-tag, list-auth-author,
# list-auth-offset (the same four signed in), graphql (POST /graphql: the
# page of list-auth as one GraphQL query, signed in), graphql-deep (the same
# query `after:` a cursor 5,000 articles in, fetched once before the runs),
# feed, article (GET one article, rotating over 10,000 slugs), comments (an
# article's comments, same slugs), create (POST /api/articles), create-one
# (the same from one client, wrk -t1 -c1: a single write's latency).
#
# What it does, for each backend (every wait and loop is bounded):
#  1. installs wrk (and, for PostgreSQL, postgresql) with apt when missing;
#     builds `basalt` in release mode (CARGO_TARGET_DIR, default
#     /work/target-bench) and, for the query analysis, a libsqlite3 from the
#     same amalgamation the server bundles;
#  2. postgres and distributed: starts a throw-away cluster on 127.0.0.1 in
#     a temporary folder (as the `postgres` user when run as root), stopped
#     and removed at the end whatever happens; distributed: Redis and
#     RabbitMQ too (scripts/lib/{redis,rabbitmq}.sh), likewise;
#  3. `basalt migrate`, `basalt user create` (one real argon2id hash), then
#     bench/seed/seed.py writes 10k users, 100k articles, tags, comments,
#     favourites and follows straight into the database (timed), and
#     ANALYZE (SQLite) / VACUUM ANALYZE (PostgreSQL);
#  4. bench/seed/explain.py records the plan and time of every query the
#     scenarios run (bench/out/<timestamp>/<backend>/explain*.txt);
#  5. starts `basalt serve` on a free loopback port, log level warn; signs
#     in the benchmark's readers and writers; records idle RSS after start;
#     warms every read scenario up; records idle RSS again;
#  6. N times: every read scenario (wrk), each after waiting for the machine
#     to be quiet and repeated when other people's work disturbed it; then
#     N times the create scenario (last: it adds articles);
#  7. stops the server with SIGTERM.
# Then it writes the medians, the goals and the machine's description into
# BENCHMARKS.md between this scenario's marker comments (other sections are
# left as they are), followed by bench/notes/blog.md (the hand-written
# analysis). A partial run (--sqlite-only, --postgres-only, --only) writes
# its section to bench/out/<timestamp>/section.md only, unless --report
# names a file; so do --small (a tenth of the data set, to try the harness
# out quickly) and --no-build (measures the binary already in
# CARGO_TARGET_DIR, whatever it was built from). Raw output goes to
# bench/out/<timestamp>/ (ignored by git). --rerender DIR writes the
# section again from the results of an earlier run in DIR
# (bench/out/<timestamp>), with bench/notes/blog.md as it is now.
#
# Traffic goes to 127.0.0.1 only. Nothing here asserts a performance goal:
# it measures and reports.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"
WRK_DIR="$BENCH_DIR/wrk"
SEED_DIR="$BENCH_DIR/seed"
REPORT="$ROOT/BENCHMARKS.md"
REPORT_GIVEN=no
SECTION=blog

REPS=3
DURATION=10          # seconds per measurement
WARMUP=3             # seconds of warm-up per scenario, once per backend
THREADS=2
CONNECTIONS=32
ALL_BACKENDS="sqlite postgres distributed"
BACKENDS=$ALL_BACKENDS
ONLY=""
SOURCE="head"        # or "worktree"
SMALL=no             # --small: a tenth of the data set, to try the harness out
RERENDER=""          # --rerender DIR: only write the section again from DIR's results
PASSWORD="correct horse battery staple"
HASH_USER=bench-hash-source
ALL_SCENARIOS="ceiling tags list list-tag list-author list-offset list-auth list-auth-tag list-auth-author list-auth-offset graphql graphql-deep feed article comments create create-one"
# Goals of the issue, against the ceiling (GET /healthz on the same server).
GOAL_TAGS=60
GOAL_LIST=25
GOAL_LIST_AUTH=10
GOAL_ARTICLE=25
# Issue 14, part 3: the reads and writes that reach the database.
GOAL_FEED=10            # % of the ceiling,
GOAL_FEED_P99_MS=50     # with this p99
GOAL_COMMENTS=20        # % of the ceiling
GOAL_CREATE_1_P50_MS=3  # one client's create, PostgreSQL
GOAL_CREATE_TIMES=2     # create throughput against the run of 2026-12-02:
CREATE_BEFORE_sqlite=875
CREATE_BEFORE_postgres=1562
CREATE_BEFORE_distributed=995
GOAL_GRAPHQL=50         # % of list-auth's rate
GOAL_GRAPHQL_DEEP=90    # % of the first page's rate ("as fast as the first")
# Idle RSS: the server just started and idle (it has answered its health
# checks, nothing else), in decimal megabytes as the issue states it.
GOAL_RSS_MB=20

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
        --warmup) WARMUP=${2:?}; shift 2 ;;
        --connections) CONNECTIONS=${2:?}; shift 2 ;;
        --sqlite-only) BACKENDS=sqlite; shift ;;
        --postgres-only) BACKENDS=postgres; shift ;;
        --backends) BACKENDS=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --report) REPORT=${2:?}; REPORT_GIVEN=yes; shift 2 ;;
        --worktree) SOURCE=worktree; shift ;;
        --small) SMALL=yes; shift ;;
        --no-build) SOURCE=prebuilt; shift ;;
        --rerender) RERENDER=${2:?}; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "bench: unknown argument $1" >&2; usage 2 ;;
    esac
done
[[ "$REPS" =~ ^[0-9]+$ ]] && [ "$REPS" -ge 1 ] && [ "$REPS" -le 20 ] || die "--reps must be 1..20"
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 3 ] && [ "$DURATION" -le 300 ] || die "--duration must be 3..300 seconds"
[[ "$WARMUP" =~ ^[0-9]+$ ]] && [ "$WARMUP" -ge 1 ] && [ "$WARMUP" -le 60 ] || die "--warmup must be 1..60 seconds"
[[ "$CONNECTIONS" =~ ^[0-9]+$ ]] && [ "$CONNECTIONS" -ge "$THREADS" ] && [ "$CONNECTIONS" -le 1000 ] \
    || die "--connections must be $THREADS..1000"
for b in $BACKENDS; do
    [[ " $ALL_BACKENDS " == *" $b "* ]] || die "unknown backend $b (known: $ALL_BACKENDS)"
done
SCENARIOS=$ALL_SCENARIOS
if [ -n "$ONLY" ]; then
    SCENARIOS=""
    for s in ${ONLY//,/ }; do
        [[ " $ALL_SCENARIOS " == *" $s "* ]] || die "unknown scenario $s (known: $ALL_SCENARIOS)"
        SCENARIOS="$SCENARIOS $s"
    done
    # The ceiling is what every other scenario is compared with.
    [[ " $SCENARIOS " == *" ceiling "* ]] || SCENARIOS="ceiling$SCENARIOS"
    SCENARIOS=$(echo $SCENARIOS)
fi
case "$REPORT" in /*) ;; *) REPORT="$PWD/$REPORT" ;; esac
FULL_RUN=no
[ "$BACKENDS" = "$ALL_BACKENDS" ] && [ "$SCENARIOS" = "$ALL_SCENARIOS" ] && [ "$SMALL" = no ] \
    && [ "$SOURCE" != prebuilt ] && FULL_RUN=yes
SEED_SIZE=()
[ "$SMALL" = yes ] && SEED_SIZE=(--users 1000 --articles 10000 --comments 20000 --favorites 5000 --follows 10000 --slugs 2000)

# For a scenario: its request and who sends it (for wrk and the report).
scenario_request() {
    case "$1" in
        ceiling) echo "GET /healthz" ;;
        tags) echo "GET /api/tags" ;;
        list|list-auth) echo "GET /api/articles" ;;
        list-tag|list-auth-tag) echo "GET /api/articles?tag=$TAG" ;;
        list-author|list-auth-author) echo "GET /api/articles?author=$AUTHOR" ;;
        list-offset|list-auth-offset) echo "GET /api/articles?offset=5000" ;;
        feed) echo "GET /api/articles/feed" ;;
        article) echo "GET /api/articles/{slug}" ;;
        comments) echo "GET /api/articles/{slug}/comments" ;;
        graphql) echo "POST /graphql {articles(first: 20)}" ;;
        graphql-deep) echo "POST /graphql {articles(first: 20, after: 5,000 in)}" ;;
        create) echo "POST /api/articles" ;;
        create-one) echo "POST /api/articles, one client" ;;
    esac
}
scenario_who() {
    case "$1" in
        list-auth|list-auth-tag|list-auth-author|list-auth-offset|graphql|graphql-deep|feed) echo "readers" ;;
        create|create-one) echo "writers" ;;
        *) echo "anonymous" ;;
    esac
}

# The measured configuration is the default one plus the overrides below,
# whatever the caller's environment holds.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^BASALT_' || true)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
# Helpers shared with bench/run.sh.
. "$BENCH_DIR/lib.sh"
# KiB -> MiB, one decimal.
mib() { fmt 1 "$(calc "$1 / 1024")"; }
if [ -n "$RERENDER" ]; then
    # The section again, from an earlier run's results (e.g. after editing
    # bench/notes/blog.md): what the run knew is in its state.env.
    OUT=$(cd "$RERENDER" && pwd) || die "no folder $RERENDER"
    [ -f "$OUT/state.env" ] || die "$OUT/state.env is missing (not a finished run of bench/blog.sh?)"
    log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/rerender.log" >&2; }
    REPORT_WAS=$REPORT
    REPORT_GIVEN_WAS=$REPORT_GIVEN
    # shellcheck disable=SC1091
    . "$OUT/state.env"
    REPORT=$REPORT_WAS
    REPORT_GIVEN=$REPORT_GIVEN_WAS
    log "writing the section again from $OUT"
else
BASALT="$CARGO_TARGET_DIR/release/basalt"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$BENCH_DIR/out/$STAMP"
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }
started_at=$(date +%s)
log "blog benchmark: backends $BACKENDS; scenarios $SCENARIOS; $REPS x ${DURATION} s; output $OUT"

# ---------------------------------------------------------------- tools ----
ensure_wrk
for tool in curl awk getconf cargo rustc python3 sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# What is measured: by default the committed code (HEAD), exported into a
# folder of its own (the one bench/run.sh uses), so that the result names
# one commit and half-finished edits in the working tree can neither skew
# nor break it; --worktree measures the working tree as it is.
if [ "$SOURCE" = prebuilt ]; then
    SRC=$ROOT
    [ -x "$BASALT" ] || die "no $BASALT to use with --no-build"
    code_desc="a prebuilt binary (\`$BASALT\` of $(date -u -r "$BASALT" '+%Y-%m-%d %H:%M UTC'); which source it was built from is not known)"
elif [ "$SOURCE" = head ]; then
    export_head "$ROOT"
else
    SRC=$ROOT
    # The commit the working tree sits on, read from .git's files (no git
    # process: the tree is shared and may be in use), and a fingerprint of
    # the sources that were built, which names exactly what was measured.
    head_commit=unknown
    if [ -f "$ROOT/.git/HEAD" ]; then
        ref=$(sed -n 's/^ref: //p' "$ROOT/.git/HEAD")
        if [ -z "$ref" ]; then
            head_commit=$(head -c 40 "$ROOT/.git/HEAD")
        elif [ -f "$ROOT/.git/$ref" ]; then
            head_commit=$(head -c 40 "$ROOT/.git/$ref")
        elif [ -f "$ROOT/.git/packed-refs" ]; then
            head_commit=$(awk -v r="$ref" '$2 == r { print $1 }' "$ROOT/.git/packed-refs")
        fi
    fi
    fingerprint=$(cd "$ROOT" && find crates Cargo.toml Cargo.lock -type f ! -path '*/target/*' -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
    code_desc="the working tree on commit ${head_commit:0:7} (uncommitted edits, if any, included; sources' sha256 fingerprint $fingerprint)"
fi

if [ "$SOURCE" != prebuilt ]; then
    log "building $SRC (release; several minutes the first time) -> $OUT/build.log"
    build_release "$SRC" "$OUT/build.log" -p basalt \
        || die "build failed (see $OUT/build.log)"
fi

# The SQLite the server bundles (libsqlite3-sys's amalgamation). The query
# analysis and ANALYZE run on a shared library built from that same source
# (same version, same STAT4 option), so that their plans are the server's.
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
lsys_version=$(awk '$0 == "name = \"libsqlite3-sys\"" { getline; gsub(/[^0-9.]/, ""); print; exit }' "$SRC/Cargo.lock")
amalgamation=$(ls -d "$CARGO_HOME"/registry/src/*/"libsqlite3-sys-$lsys_version"/sqlite3 2>/dev/null | head -n1 || true)
sqlite_version=unknown
[ -n "$amalgamation" ] && sqlite_version=$(awk '/^#define SQLITE_VERSION / { gsub(/"/, "", $3); print $3 }' "$amalgamation/sqlite3.h")
SQLITE_LIB_DIR=""
analysis_sqlite="Python's sqlite3 ($(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)'), not the server's: planner may differ)"
if [[ " $BACKENDS " == *" sqlite "* ]] && [ -n "$amalgamation" ] && command -v gcc >/dev/null 2>&1; then
    SQLITE_LIB_DIR="$CARGO_TARGET_DIR/bench-sqlite/$sqlite_version"
    if [ ! -f "$SQLITE_LIB_DIR/libsqlite3.so.0" ]; then
        log "building libsqlite3 $sqlite_version for the query analysis (about a minute, once)"
        mkdir -p "$SQLITE_LIB_DIR"
        # The options libsqlite3-sys's build.rs sets (sqlx adds unlock_notify).
        if nice gcc -O2 -shared -fPIC -o "$SQLITE_LIB_DIR/libsqlite3.so.0.partial" \
            -DSQLITE_DEFAULT_FOREIGN_KEYS=1 -DSQLITE_ENABLE_API_ARMOR -DSQLITE_ENABLE_COLUMN_METADATA \
            -DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_ENABLE_FTS3 -DSQLITE_ENABLE_FTS3_PARENTHESIS -DSQLITE_ENABLE_FTS5 \
            -DSQLITE_ENABLE_JSON1 -DSQLITE_ENABLE_LOAD_EXTENSION=1 -DSQLITE_ENABLE_MEMORY_MANAGEMENT \
            -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_STAT4 -DSQLITE_SOUNDEX -DSQLITE_THREADSAFE=1 -DSQLITE_USE_URI \
            -DSQLITE_ENABLE_UNLOCK_NOTIFY "$amalgamation/sqlite3.c" -lpthread -lm >"$OUT/sqlite-lib.log" 2>&1; then
            mv "$SQLITE_LIB_DIR/libsqlite3.so.0.partial" "$SQLITE_LIB_DIR/libsqlite3.so.0"
        else
            log "could not build libsqlite3 (see $OUT/sqlite-lib.log); the analysis uses Python's own"
            SQLITE_LIB_DIR=""
        fi
    fi
    if [ -n "$SQLITE_LIB_DIR" ]; then
        got=$(LD_LIBRARY_PATH="$SQLITE_LIB_DIR" python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')
        if [ "$got" = "$sqlite_version" ]; then
            analysis_sqlite="SQLite $sqlite_version, built from the server's amalgamation"
        else
            SQLITE_LIB_DIR=""
        fi
    fi
fi
# python3 with the server's SQLite, when built.
PYSQLITE=(python3)
[ -n "$SQLITE_LIB_DIR" ] && PYSQLITE=(env LD_LIBRARY_PATH="$SQLITE_LIB_DIR" python3)

CLK_TCK=$(getconf CLK_TCK)
CORES=$(nproc)
machine=$(describe_machine)
log "machine: $machine"

# ------------------------------------------------------------ processes ----
WORK=$(mktemp -d /tmp/basalt-blog-bench.XXXXXX)
# The binary measured is a copy: others may rebuild CARGO_TARGET_DIR meanwhile.
cp "$BASALT" "$WORK/basalt"
BASALT="$WORK/basalt"
SERVER_PID=""
PG_DIR=""
PG_BIN=""
PG_PID=""
PG_AS=()
stop_server() { # quietly, for cleanup
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
    SERVER_PID=""
}
stop_postgres() {
    if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
        "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -t 60 stop >/dev/null 2>&1 \
            || "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    [ -n "$PG_DIR" ] && rm -rf "$PG_DIR"
    PG_DIR=""
    PG_PID=""
}
# Redis and RabbitMQ, for the distributed backend.
BROKERS_DIR=""
REDIS_PID=""
RABBITMQ_PID=""
EPMD_WAS_RUNNING=$(pgrep -x epmd >/dev/null && echo yes || echo no)
start_brokers() {
    command -v redis-server >/dev/null 2>&1 && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || {
        log "installing Redis and RabbitMQ with apt"
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o 'DPkg::Post-Invoke::=' install -y \
            redis-server rabbitmq-server; } >>"$OUT/apt.log" 2>&1 || die "cannot install them (see $OUT/apt.log)"
    }
    BROKERS_DIR=$(mktemp -d /tmp/basalt-blog-brokers.XXXXXX)
    chmod 755 "$BROKERS_DIR" # RabbitMQ runs as its own user, in a folder inside
    local redis_port amqp_port dist_port
    alloc_port redis_port 26379 || die "no free port for Redis"
    alloc_port amqp_port 25672 || die "no free port for RabbitMQ"
    alloc_port dist_port 25172 || die "no free port for RabbitMQ's distribution"
    redis_start "$BROKERS_DIR/redis" "$redis_port" || die "Redis did not start"
    REDIS_PID=$(cat "$BROKERS_DIR/redis/redis.pid")
    rabbitmq_start "$BROKERS_DIR/rabbitmq" "$amqp_port" "$dist_port" || die "RabbitMQ did not start"
    RABBITMQ_PID=$(cat "$BROKERS_DIR/rabbitmq/broker.pid" 2>/dev/null || pgrep -f "beam.*$(rabbitmq_node "$BROKERS_DIR/rabbitmq")" | head -n1)
    REDIS_URL="redis://127.0.0.1:$redis_port"
    AMQP_URL="amqp://guest:guest@127.0.0.1:$amqp_port/%2f"
    redis_version=$(redis-server --version | awk '{ print $3 }' | tr -d v=)
    rabbitmq_version=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null | cut -d- -f1)
    log "Redis $redis_version on 127.0.0.1:$redis_port (pid $REDIS_PID), RabbitMQ $rabbitmq_version on 127.0.0.1:$amqp_port (pid ${RABBITMQ_PID:-?})"
}
stop_brokers() {
    [ -n "$BROKERS_DIR" ] || return 0
    rabbitmq_stop "$BROKERS_DIR/rabbitmq"
    [ "$EPMD_WAS_RUNNING" = yes ] || pkill -x epmd 2>/dev/null || true
    redis_stop "$BROKERS_DIR/redis"
    rm -rf "$BROKERS_DIR"
    BROKERS_DIR="" REDIS_PID="" RABBITMQ_PID=""
}
cleanup() {
    local status=$?
    stop_server
    stop_postgres
    stop_brokers
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU ticks so far of the servers the backend talks to: the PostgreSQL
# cluster (the postmaster, its live children and the children that ended)
# and, for the distributed backend, Redis and RabbitMQ (its Erlang VM).
pg_ticks() {
    if [ -z "$PG_PID" ]; then
        echo 0
        return
    fi
    # (Processes come and go meanwhile: cat's complaints are expected.)
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v p="$PG_PID" -v r="${REDIS_PID:-x}" -v q="${RABBITMQ_PID:-x}" '
        $1 == p { s += $14 + $15 + $16 + $17 } $4 == p { s += $14 + $15 }
        $1 == r || $1 == q { s += $14 + $15 + $16 + $17 } END { print s + 0 }'
}
# switches_snapshot FILE: "thread-id context-switches" of each of the
# server's threads now.
switches_snapshot() {
    local task
    for task in /proc/"$SERVER_PID"/task/*; do
        awk -v t="${task##*/}" '/^(voluntary|nonvoluntary)_ctxt_switches/ { s += $2 } END { if (NR) print t, s + 0 }' \
            "$task/status" 2>/dev/null || true
    done >"$1"
}
# switches_delta BEFORE AFTER: context switches between two snapshots, over
# the threads alive at the second one (threads that ended meanwhile are not
# counted: an undercount, good enough to count hand-offs per request).
switches_delta() {
    awk 'NR == FNR { before[$1] = $2; next } { d += $2 - ($1 in before ? before[$1] : 0) } END { print d + 0 }' "$1" "$2"
}
own_ticks() {
    local s=0
    [ -n "$SERVER_PID" ] && s=$(proc_ticks "$SERVER_PID")
    echo $((s + $(pg_ticks)))
}
# As in lib.sh, but the PostgreSQL cluster is ours too.
background_busy() {
    local b0 s0 t0 b1 s1 t1 p0 p1
    p0=$(own_ticks)
    read -r b0 s0 t0 _ < <(machine_ticks)
    sleep 2
    read -r b1 s1 t1 _ < <(machine_ticks)
    p1=$(own_ticks)
    calc "100 * ($b1 - $b0 - ($p1 - $p0)) / ($t1 - $t0)"
}
QUIET_PCT=15        # "quiet" = at most this much of the machine busy
QUIET_BUDGET=900    # seconds of waiting for quiet, in all; then measure anyway
quiet_waited=0
OTHER_MAX=10        # % of the machine going to others during a measurement
MAX_ATTEMPTS=3
repeated=0
disturbed=0

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# "anon file" KiB of the resident set: the heap and stacks; the mapped binary and libraries.
rss_split() { awk '/^RssAnon/ { a = $2 } /^RssFile/ { f = $2 } END { print a + 0, f + 0 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

# pg_bindir: where Debian's pg_ctl/initdb are (the cluster itself is started
# below with the benchmark's own settings, not the tests' durability-off ones).
# shellcheck source=scripts/lib/postgres.sh
. "$BENCH_DIR/../scripts/lib/postgres.sh"
# shellcheck source=scripts/lib/redis.sh
. "$BENCH_DIR/../scripts/lib/redis.sh"
# shellcheck source=scripts/lib/rabbitmq.sh
. "$BENCH_DIR/../scripts/lib/rabbitmq.sh"
# shellcheck source=scripts/lib/ports.sh
. "$BENCH_DIR/../scripts/lib/ports.sh"
PG_SETTINGS="synchronous_commit=off"
start_postgres() {
    if ! PG_BIN=$(pg_bindir); then
        log "installing PostgreSQL with apt"
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o 'DPkg::Post-Invoke::=' install -y postgresql; } \
            >>"$OUT/apt.log" 2>&1 || die "cannot install postgresql (see $OUT/apt.log)"
        PG_BIN=$(pg_bindir) || die "postgresql installed, but no pg_ctl found"
    fi
    PG_DIR=$(mktemp -d /tmp/basalt-blog-pg.XXXXXX)
    alloc_port PG_PORT 25432 || die "no free port for PostgreSQL"
    # initdb refuses to run as root: run the cluster as `postgres` then.
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
        chown postgres "$PG_DIR"
        PG_AS=(runuser -u postgres --)
    else
        PG_AS=()
    fi
    "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale >"$OUT/postgres-initdb.log" 2>&1 \
        || die "initdb failed (see $OUT/postgres-initdb.log)"
    # Debian's defaults, except: loopback only, and commits not flushed one
    # by one (synchronous_commit=off), like the server's SQLite in WAL mode
    # with synchronous=NORMAL. Durable enough for a throw-away cluster.
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c ${PG_SETTINGS// / -c }" start >/dev/null \
        || { cat "$PG_DIR/server.log" >&2; die "PostgreSQL did not start"; }
    PG_PID=$(head -n1 "$PG_DIR/data/postmaster.pid")
    PG_ADMIN_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    "$PG_BIN/psql" "$PG_ADMIN_URL" -X -q -c "CREATE DATABASE basalt_bench" || die "cannot create the database"
    PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/basalt_bench"
    pg_version=$("$PG_BIN/postgres" --version | awk '{ print $3 }')
    pg_shared_buffers=$("$PG_BIN/psql" "$PG_URL" -X -Atc "SHOW shared_buffers")
    log "PostgreSQL $pg_version on 127.0.0.1:$PG_PORT (pid $PG_PID, shared_buffers $pg_shared_buffers)"
}

# ------------------------------------------------------------- scenarios ----
# run_scenario NAME OUTPUT SECONDS
run_scenario() {
    local name=$1 output=$2 seconds=$3 script=blog-get.lua threads=$THREADS connections=$CONNECTIONS
    [ "$name" = create-one ] && threads=1 connections=1
    local -a envs=(BENCH_THREADS="$threads")
    case "$name" in
        article) envs+=(BENCH_PATHS_FILE="$BOUT/paths-article.txt") ;;
        comments) envs+=(BENCH_PATHS_FILE="$BOUT/paths-comments.txt") ;;
        graphql|graphql-deep) script=blog-post.lua; envs+=(BENCH_PATH=/graphql BENCH_BODY_FILE="$BOUT/body-$name.json") ;;
        create|create-one) script=blog-create.lua; envs+=(BENCH_RUN_ID="$BACKEND-$(date +%s%N)") ;;
        *) envs+=(BENCH_PATH="$(scenario_request "$name" | cut -d' ' -f2)") ;;
    esac
    case "$(scenario_who "$name")" in
        readers) envs+=(BENCH_TOKENS_FILE="$BOUT/tokens-readers.txt") ;;
        writers) envs+=(BENCH_TOKENS_FILE="$BOUT/tokens-writers.txt") ;;
    esac
    timeout $((seconds + 60)) env "${envs[@]}" wrk -t"$threads" -c"$connections" -d"${seconds}s" --timeout 10s \
        --latency -s "$WRK_DIR/$script" "$BASE" >"$output" 2>&1
}

# measure LABEL SCENARIO: one measurement, after waiting for quiet; repeated
# (up to MAX_ATTEMPTS) when more than OTHER_MAX % of the machine went to
# processes other than the server, wrk and PostgreSQL meanwhile. Writes
# LABEL.txt (wrk) and LABEL.cpu: total busy steal iowait server wrk pg
# ticks, and the server's context switches.
measure() {
    local label=$1 scenario=$2 attempt b0 s0 t0 w0 b1 s1 t1 w1 p0 p1 g0 g1 c1 ours other
    for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
        wait_quiet "$BACKEND/$label"
        p0=$(proc_ticks "$SERVER_PID")
        g0=$(pg_ticks)
        switches_snapshot "$BOUT/$label.switches0"
        read -r b0 s0 t0 w0 < <(machine_ticks)
        (
            run_scenario "$scenario" "$BOUT/$label.txt" "$DURATION" || exit 1
            # The CPU of this subshell's finished children: wrk.
            awk '{ print $16 + $17 }' "/proc/$BASHPID/stat" >"$BOUT/$label.wrkticks"
        ) || die "$label failed (see $BOUT/$label.txt)"
        read -r b1 s1 t1 w1 < <(machine_ticks)
        p1=$(proc_ticks "$SERVER_PID")
        g1=$(pg_ticks)
        switches_snapshot "$BOUT/$label.switches1"
        c1=$(switches_delta "$BOUT/$label.switches0" "$BOUT/$label.switches1")
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server died (see $BOUT/server.log)"
        ours=$(cat "$BOUT/$label.wrkticks")
        echo "$((t1 - t0)) $((b1 - b0)) $((s1 - s0)) $((w1 - w0)) $((p1 - p0)) $ours $((g1 - g0)) $c1" >"$BOUT/$label.cpu"
        other=$(calc "100 * ($b1 - $b0 - ($p1 - $p0) - $ours - ($g1 - $g0)) / ($t1 - $t0)")
        if awk -v o="$other" -v m="$OTHER_MAX" 'BEGIN { exit !(o <= m) }'; then
            echo "$BACKEND/$label $other kept" >>"$OUT/other-work.txt"
            return 0
        fi
        if [ "$attempt" -lt "$MAX_ATTEMPTS" ]; then
            log "  $label: $(fmt 0 "$other") % of the machine went to other work meanwhile; measuring again"
            repeated=$((repeated + 1))
        fi
    done
    log "  $label: still disturbed ($(fmt 0 "$other") % other work) after $MAX_ATTEMPTS attempts; keeping it"
    echo "$BACKEND/$label $other disturbed" >>"$OUT/other-work.txt"
    disturbed=$((disturbed + 1))
}

# sign_in_all WHO: access tokens of the readers or writers, one a line.
sign_in_all() {
    local who=$1 email token n=0
    : >"$BOUT/tokens-$who.txt"
    while read -r email; do
        token=$(curl -s --max-time 30 -H "Content-Type: application/json" \
            -d "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}" "$BASE/api/auth/token" \
            | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' 2>/dev/null) \
            || die "sign-in of $email failed"
        echo "$token" >>"$BOUT/tokens-$who.txt"
        n=$((n + 1))
    done < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$BOUT/seed.json" "$who")
    [ "$n" -gt 0 ] || die "no $who in the seed"
}

start_server() {
    local -a server_env=("${SERVER_ENV[@]}")
    env "${server_env[@]}" "$BASALT" serve >"$BOUT/server.log" 2>&1 &
    SERVER_PID=$!
    PORT=""
    for _ in $(seq 1 120); do
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited at start (see $BOUT/server.log)"
        PORT=$(grep -m1 -o 'listen=127\.0\.0\.1:[0-9]*' "$BOUT/server.log" | cut -d: -f2 || true)
        [ -n "$PORT" ] && break
        sleep 0.5
    done
    [ -n "$PORT" ] || die "server did not report its port within 60 s (see $BOUT/server.log)"
    BASE="http://127.0.0.1:$PORT"
    curl -fsS --max-time 5 "$BASE/healthz" >/dev/null || die "GET /healthz failed"
}

# ---------------------------------------------------------------- a run ----
run_backend() {
    BACKEND=$1
    BOUT="$OUT/$BACKEND"
    mkdir -p "$BOUT"
    local data="$WORK/$BACKEND-data"
    mkdir -p "$data"
    SERVER_ENV=(
        BASALT_DATA_DIR="$data"
        BASALT_LISTEN=127.0.0.1:0
        # warn, but keep the "ready" line, which names the port.
        "BASALT_LOG_LEVEL=warn,basalt_platform::server=info"
        BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE=1000000
        BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_ACCOUNT_PER_MINUTE=1000000
    )
    if [ "$BACKEND" != sqlite ]; then
        start_postgres
        SERVER_ENV+=(BASALT_DATABASE_URL="$PG_URL")
    fi
    if [ "$BACKEND" = distributed ]; then
        start_brokers
        SERVER_ENV+=(BASALT_REDIS_URL="$REDIS_URL" BASALT_AMQP_URL="$AMQP_URL")
    fi

    log "[$BACKEND] migrating, creating the account whose password hash is copied"
    timeout 120 env "${SERVER_ENV[@]}" "$BASALT" migrate >"$BOUT/migrate.log" 2>&1 || die "migrate failed (see $BOUT/migrate.log)"
    echo "$PASSWORD" | timeout 120 env "${SERVER_ENV[@]}" "$BASALT" user create \
        --email "$HASH_USER@example.com" --username "$HASH_USER" >"$BOUT/user-create.log" 2>&1 \
        || die "user create failed (see $BOUT/user-create.log)"

    log "[$BACKEND] seeding (bench/seed/seed.py)"
    local t0 t1
    t0=$(date +%s.%N)
    if [ "$BACKEND" = sqlite ]; then
        # Statistics come after the plans without them (a server never runs ANALYZE itself).
        timeout 1200 python3 "$SEED_DIR/seed.py" --sqlite "$data/basalt.db" --no-analyze --hash-user "$HASH_USER" \
            --info "$BOUT/seed.json" "${SEED_SIZE[@]}" >"$BOUT/seed.log" 2>&1 || die "seeding failed (see $BOUT/seed.log)"
        t1=$(date +%s.%N)
        log "[$BACKEND] query plans without statistics -> $BOUT/explain-no-stats.txt"
        timeout 600 "${PYSQLITE[@]}" "$SEED_DIR/explain.py" --sqlite "$data/basalt.db" --info "$BOUT/seed.json" \
            >"$BOUT/explain-no-stats.txt" 2>&1 || log "  explain failed (see $BOUT/explain-no-stats.txt)"
        local a0 a1
        a0=$(date +%s.%N)
        timeout 600 "${PYSQLITE[@]}" "$SEED_DIR/seed.py" --sqlite "$data/basalt.db" --analyze-only --hash-user "$HASH_USER" \
            --info /dev/null >>"$BOUT/seed.log" 2>&1 || die "ANALYZE failed (see $BOUT/seed.log)"
        a1=$(date +%s.%N)
        echo "$(calc "$t1 - $t0 + $a1 - $a0")" >"$BOUT/seed-seconds.txt"
        log "[$BACKEND] query plans with statistics -> $BOUT/explain.txt"
        timeout 600 "${PYSQLITE[@]}" "$SEED_DIR/explain.py" --sqlite "$data/basalt.db" --info "$BOUT/seed.json" \
            >"$BOUT/explain.txt" 2>&1 || log "  explain failed (see $BOUT/explain.txt)"
        du -sk "$data" | awk '{ print $1 }' >"$BOUT/db-kib.txt"
    else
        timeout 1200 python3 "$SEED_DIR/seed.py" --postgres "$PG_URL" --psql "$PG_BIN/psql" --work "$WORK" \
            --hash-user "$HASH_USER" --info "$BOUT/seed.json" "${SEED_SIZE[@]}" >"$BOUT/seed.log" 2>&1 \
            || die "seeding failed (see $BOUT/seed.log)"
        t1=$(date +%s.%N)
        calc "$t1 - $t0" >"$BOUT/seed-seconds.txt"
        log "[$BACKEND] query plans -> $BOUT/explain.txt"
        timeout 900 python3 "$SEED_DIR/explain.py" --postgres "$PG_URL" --psql "$PG_BIN/psql" --info "$BOUT/seed.json" \
            >"$BOUT/explain.txt" 2>&1 || log "  explain failed (see $BOUT/explain.txt)"
        "$PG_BIN/psql" "$PG_URL" -X -Atc "SELECT pg_database_size('basalt_bench') / 1024" >"$BOUT/db-kib.txt"
    fi
    log "[$BACKEND] seeded in $(fmt 0 "$(cat "$BOUT/seed-seconds.txt")") s: $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["rows"])' "$BOUT/seed.json")"

    TAG=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["popular_tag"])' "$BOUT/seed.json")
    AUTHOR=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["prolific_author"])' "$BOUT/seed.json")
    python3 - "$BOUT" <<'PY'
import json, sys
out = sys.argv[1]
info = json.load(open(out + "/seed.json"))
with open(out + "/paths-article.txt", "w") as f:
    f.writelines("/api/articles/%s\n" % s for s in info["sample_slugs"])
with open(out + "/paths-comments.txt", "w") as f:
    f.writelines("/api/articles/%s/comments\n" % s for s in info["sample_slugs"])
PY

    log "[$BACKEND] starting basalt serve"
    start_server
    log "[$BACKEND] server pid $SERVER_PID at $BASE"
    local ready_lines
    ready_lines=$(wc -l <"$BOUT/server.log")
    sleep 3
    rss_kib "$SERVER_PID" >"$BOUT/rss-start-kib.txt"
    rss_split "$SERVER_PID" >"$BOUT/rss-start-split.txt"
    sign_in_all readers
    sign_in_all writers
    # The article and comment paths answer (spot check).
    local s
    for s in $(head -n 3 "$BOUT/paths-article.txt") $(head -n 3 "$BOUT/paths-comments.txt"); do
        curl -fsS --max-time 10 -o /dev/null "$BASE$s" || die "GET $s failed"
    done
    curl -fsS --max-time 10 -o /dev/null -H "Authorization: Token $(head -n1 "$BOUT/tokens-readers.txt")" \
        "$BASE/api/articles/feed" || die "GET /api/articles/feed failed"
    # The GraphQL scenarios' bodies: the page of GET /api/articles, and the
    # same page after a cursor 5,000 articles in (paged to through the API:
    # cursors are opaque). Both answer without errors (spot check).
    python3 - "$BASE" "$BOUT" "$(head -n1 "$BOUT/tokens-readers.txt")" <<'PY' || die "the GraphQL bodies could not be prepared"
import json, sys, urllib.request
base, out, token = sys.argv[1:4]
FIELDS = ("edges { node { slug title description tagList createdAt updatedAt favorited favoritesCount "
          "author { username bio image following } } }")
def post(query):
    req = urllib.request.Request(base + "/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": "Token " + token})
    answer = json.load(urllib.request.urlopen(req, timeout=30))
    if answer.get("errors"):
        sys.exit("GraphQL errors: %s" % answer["errors"])
    return answer["data"]
cursor = None
for _ in range(50):
    after = ', after: "%s"' % cursor if cursor else ""
    cursor = post("{ articles(first: 100%s) { pageInfo { endCursor } } }" % after)["articles"]["pageInfo"]["endCursor"]
for name, args in (("graphql", "first: 20"), ("graphql-deep", 'first: 20, after: "%s"' % cursor)):
    query = "{ articles(%s) { %s } }" % (args, FIELDS)
    assert len(post(query)["articles"]["edges"]) == 20
    with open("%s/body-%s.json" % (out, name), "w") as f:
        json.dump({"query": query}, f)
PY

    local read_scenarios="" n
    for n in $SCENARIOS; do [ "$n" = create ] || [ "$n" = create-one ] || read_scenarios="$read_scenarios $n"; done
    log "[$BACKEND] warm-up: ${WARMUP} s of each read scenario"
    for n in $read_scenarios; do
        run_scenario "$n" "$BOUT/warmup-$n.txt" "$WARMUP" || die "warm-up of $n failed"
    done
    sleep 3
    rss_kib "$SERVER_PID" >"$BOUT/rss-warm-kib.txt"
    rss_split "$SERVER_PID" >"$BOUT/rss-warm-split.txt"
    log "[$BACKEND] idle RSS: $(mib "$(cat "$BOUT/rss-start-kib.txt")") MiB after start," \
        "$(mib "$(cat "$BOUT/rss-warm-kib.txt")") MiB after the warm-up"

    local rep
    for rep in $(seq 1 "$REPS"); do
        # Access tokens live 15 minutes: fresh ones for each repetition.
        sign_in_all readers
        for n in $read_scenarios; do
            measure "$n-$rep" "$n"
            log "  [$BACKEND] run $rep/$REPS $n: $(field "$BOUT/$n-$rep.txt" rps) req/s," \
                "p50 $(field "$BOUT/$n-$rep.txt" p50_us) us, p99 $(field "$BOUT/$n-$rep.txt" p99_us) us," \
                "non-2xx $(field "$BOUT/$n-$rep.txt" non2xx)"
        done
    done
    curl -fsS --max-time 5 "$BASE/metrics" >"$BOUT/metrics-after-reads.txt" 2>/dev/null || true
    if [[ " $SCENARIOS " == *" create "* ]]; then
        for rep in $(seq 1 "$REPS"); do
            sign_in_all writers
            measure "create-$rep" create
            log "  [$BACKEND] run $rep/$REPS create: $(field "$BOUT/create-$rep.txt" rps) req/s," \
                "p50 $(field "$BOUT/create-$rep.txt" p50_us) us, p99 $(field "$BOUT/create-$rep.txt" p99_us) us," \
                "non-2xx $(field "$BOUT/create-$rep.txt" non2xx)"
        done
    fi
    if [[ " $SCENARIOS " == *" create-one "* ]]; then
        for rep in $(seq 1 "$REPS"); do
            sign_in_all writers
            measure "create-one-$rep" create-one
            log "  [$BACKEND] run $rep/$REPS create-one: $(field "$BOUT/create-one-$rep.txt" rps) req/s," \
                "p50 $(field "$BOUT/create-one-$rep.txt" p50_us) us, p99 $(field "$BOUT/create-one-$rep.txt" p99_us) us," \
                "non-2xx $(field "$BOUT/create-one-$rep.txt" non2xx)"
        done
    fi
    curl -fsS --max-time 5 "$BASE/healthz" >/dev/null || die "GET /healthz failed after the runs"
    curl -fsS --max-time 5 "$BASE/metrics" >"$BOUT/metrics-end.txt" 2>/dev/null || true
    hwm_kib "$SERVER_PID" >"$BOUT/rss-peak-kib.txt"
    rss_kib "$SERVER_PID" >"$BOUT/rss-end-kib.txt"

    # Stop the server now (SIGTERM), so that its shutdown is part of the record.
    kill -TERM "$SERVER_PID"
    local stopped=no server_exit
    for _ in $(seq 1 80); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then stopped=yes; break; fi
        sleep 0.5
    done
    if [ "$stopped" = yes ]; then
        wait "$SERVER_PID" 2>/dev/null && server_exit=0 || server_exit=$?
        SERVER_PID=""
    else
        server_exit="still running 40 s after SIGTERM"
        stop_server
    fi
    echo "$server_exit" >"$BOUT/server-exit.txt"
    tail -n +"$((ready_lines + 1))" "$BOUT/server.log" | grep -E ' (WARN|ERROR) ' >"$BOUT/server-warnings.txt" || true
    log "[$BACKEND] server stopped (exit status $server_exit)"
    if [ "$BACKEND" != sqlite ]; then
        cp "$PG_DIR/server.log" "$BOUT/postgres.log" 2>/dev/null || true
        stop_postgres
    fi
    stop_brokers
    rm -rf "$data"
}

for backend in $BACKENDS; do
    run_backend "$backend"
done

# What the report needs, for --rerender.
measured_at=$(date -u '+%Y-%m-%d %H:%M UTC')
elapsed_min=$(fmt 0 "$(calc "($(date +%s) - $started_at) / 60")")
pg_version=${pg_version:-}
pg_shared_buffers=${pg_shared_buffers:-}
redis_version=${redis_version:-}
rabbitmq_version=${rabbitmq_version:-}
declare -p STAMP BACKENDS SCENARIOS REPS DURATION WARMUP THREADS CONNECTIONS CORES CLK_TCK machine code_desc \
    sqlite_version lsys_version analysis_sqlite pg_version pg_shared_buffers redis_version rabbitmq_version PG_SETTINGS QUIET_PCT QUIET_BUDGET \
    OTHER_MAX MAX_ATTEMPTS quiet_waited repeated disturbed FULL_RUN measured_at elapsed_min TAG AUTHOR \
    | sed 's/^declare -[a-z-]* /declare -g /' >"$OUT/state.env"
fi

# -------------------------------------------------------------- results ----
# Per backend and scenario, over the repetitions: medians of req/s and
# latency percentiles, sums of errors, medians of the CPU split.
med() { # PATTERN KEY
    local f
    for f in $1; do [ -f "$f" ] || continue; field "$f" "$2"; done | median
}
sum() { # PATTERN KEY
    local f
    for f in $1; do [ -f "$f" ] || continue; field "$f" "$2"; done | awk '{ s += $1 } END { print s + 0 }'
}
# cpu_med BACKEND SCENARIO EXPR: median over the runs of EXPR of the .cpu
# columns t (total) b (busy) st (steal) io (iowait) sv (server) w (wrk) g (PostgreSQL) cs (server
# context switches) and r (requests).
cpu_med() {
    local r
    for r in $(seq 1 "$REPS"); do
        local f="$OUT/$1/$2-$r"
        [ -f "$f.cpu" ] || continue
        awk -v req="$(field "$f.txt" requests)" "{ t = \$1; b = \$2; st = \$3; io = \$4; sv = \$5; w = \$6; g = \$7; cs = \$8; r = req;
            printf \"%.6g\\n\", $3 }" "$f.cpu"
    done | median
}
ms() { fmt "$1" "$(calc "$2 / 1000")"; }
thou() { echo "$1" | sed -E ':a; s/([0-9])([0-9]{3})($|,)/\1,\2\3/; ta'; }
verdict() { # OK? -> met / not met
    if [ "$1" = 1 ]; then echo "**met**"; else echo "**not met**"; fi
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }
jq_seed() { thou "$(python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(len(v) if isinstance(v, list) else v)' "$OUT/$1/seed.json" "$2")"; }

first_backend=${BACKENDS%% *}
ceiling_rps() { med "$OUT/$1/ceiling-[0-9]*.txt" rps; }
scenario_line() { # BACKEND SCENARIO
    local b=$1 n=$2 rps p50 p99 pct non2xx sock tmo cpu_us switches runs db="" db_us=""
    rps=$(med "$OUT/$b/$n-[0-9]*.txt" rps)
    p50=$(med "$OUT/$b/$n-[0-9]*.txt" p50_us)
    p99=$(med "$OUT/$b/$n-[0-9]*.txt" p99_us)
    pct=$(calc "100 * $rps / $(ceiling_rps "$b")")
    non2xx=$(sum "$OUT/$b/$n-[0-9]*.txt" non2xx)
    sock=$(sum "$OUT/$b/$n-[0-9]*.txt" socket_errors)
    tmo=$(sum "$OUT/$b/$n-[0-9]*.txt" timeouts)
    cpu_us=$(cpu_med "$b" "$n" "sv * 1e6 / $CLK_TCK / r")
    switches=$(cpu_med "$b" "$n" "cs / r")
    if [ "$b" != sqlite ]; then
        db=" / $(pct0 "$(cpu_med "$b" "$n" "100 * g / t")")"
        db_us=" $(fmt 0 "$(cpu_med "$b" "$n" "g * 1e6 / $CLK_TCK / r")") µs |"
    fi
    runs=$(for r in $(seq 1 "$REPS"); do f="$OUT/$b/$n-$r.txt"; [ -f "$f" ] || continue; fmt 0 "$(field "$f" rps)"; echo; done | paste -sd/ - | sed 's#/# / #g')
    echo "| $n | \`$(scenario_request "$n")\` ($(scenario_who "$n")) | **$(fmt 0 "$rps")** | $(fmt 1 "$pct") % | $(ms 2 "$p50") | $(ms 2 "$p99") | $(fmt 0 "$cpu_us") µs |$db_us $(fmt 1 "$switches") | $(pct0 "$(cpu_med "$b" "$n" "100 * sv / t")") / $(pct0 "$(cpu_med "$b" "$n" "100 * w / t")")$db / $(pct0 "$(cpu_med "$b" "$n" "100 * (b - sv - w - g) / t")") % | $non2xx / $sock / $tmo | $runs |"
}
pct_of() { calc "100 * $(med "$OUT/$1/$2-[0-9]*.txt" rps) / $(ceiling_rps "$1")"; }
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
goal_cell() { # BACKEND SCENARIO GOAL
    if ! has "$2"; then echo "not measured"; return; fi
    local p
    p=$(pct_of "$1" "$2")
    echo "$(verdict "$(ge "$p" "$3")") ($(fmt 1 "$p") %)"
}
# A scenario's median p50 / p99 in ms, and its req/s over another's.
p_ms() { calc "$(med "$OUT/$1/$2-[0-9]*.txt" "$3") / 1000"; }
rps_ratio() { calc "100 * $(med "$OUT/$1/$2-[0-9]*.txt" rps) / $(med "$OUT/$1/$3-[0-9]*.txt" rps)"; }
feed_cell() { # BACKEND
    if ! has feed; then echo "not measured"; return; fi
    local p p99
    p=$(pct_of "$1" feed)
    p99=$(p_ms "$1" feed p99_us)
    echo "$(verdict "$(awk -v p="$p" -v q="$p99" -v g="$GOAL_FEED" -v m="$GOAL_FEED_P99_MS" 'BEGIN { print (p >= g && q <= m) ? 1 : 0 }')") ($(fmt 1 "$p") %, p99 $(fmt 1 "$p99") ms)"
}
create_one_cell() { # BACKEND
    if ! has create-one; then echo "not measured"; return; fi
    local p50
    p50=$(p_ms "$1" create-one p50_us)
    echo "$(verdict "$(awk -v p="$p50" -v g="$GOAL_CREATE_1_P50_MS" 'BEGIN { print (p <= g) ? 1 : 0 }')") ($(fmt 2 "$p50") ms)"
}
create_times_cell() { # BACKEND
    if ! has create; then echo "not measured"; return; fi
    local before times
    before=$(eval echo "\${CREATE_BEFORE_$1:-}")
    [ -n "$before" ] || { echo "no earlier figure"; return; }
    times=$(calc "$(med "$OUT/$1/create-[0-9]*.txt" rps) / $before")
    echo "$(verdict "$(ge "$times" "$GOAL_CREATE_TIMES")") ($(fmt 0 "$before") → $(fmt 0 "$(med "$OUT/$1/create-[0-9]*.txt" rps)") req/s, $(fmt 2 "$times") ×)"
}
ratio_cell() { # BACKEND SCENARIO OF-SCENARIO GOAL
    if ! has "$2" || ! has "$3"; then echo "not measured"; return; fi
    local r
    r=$(rps_ratio "$1" "$2" "$3")
    echo "$(verdict "$(ge "$r" "$4")") ($(fmt 0 "$r") %)"
}
errors_cell() { # BACKEND
    local pattern="" n
    for n in $SCENARIOS; do pattern="$pattern $OUT/$1/$n-[0-9]*.txt"; done
    local e
    e=$(($(sum "$pattern" non2xx) + $(sum "$pattern" socket_errors) + $(sum "$pattern" timeouts)))
    if [ "$e" -eq 0 ]; then echo "**met** (0)"; else echo "**not met** ($e)"; fi
}
rss_cell() { # BACKEND
    local start
    start=$(cat "$OUT/$1/rss-start-kib.txt")
    echo "$(verdict "$(awk -v k="$start" -v g="$GOAL_RSS_MB" 'BEGIN { print (k * 1024 <= g * 1000000) ? 1 : 0 }')") ($(fmt 1 "$(calc "$start * 1024 / 1000000")") MB = $(mib "$start") MiB idle after start; $(mib "$(cat "$OUT/$1/rss-warm-kib.txt")") MiB after the warm-up, its caches full)"
}
cache_counts() { # BACKEND FILE -> "hits / misses" (from /metrics, whatever the metric's prefix and labels)
    awk '$1 ~ /cache_lookups_total\{/ && $1 ~ /result="hit"/ { h += $2 }
        $1 ~ /cache_lookups_total\{/ && $1 ~ /result="miss"/ { m += $2 }
        END { printf "%d hits / %d misses", h, m }' "$OUT/$1/$2" 2>/dev/null || echo "unknown"
}
backend_title() {
    case "$1" in
        sqlite) echo "SQLite" ;;
        postgres) echo "PostgreSQL" ;;
        distributed) echo "PostgreSQL + Redis + RabbitMQ" ;;
    esac
}

background_median=$(awk '{ print $2 }' "$OUT/background.txt" | median)
background_max=$(awk '{ print $2 }' "$OUT/background.txt" | sort -g | tail -n1)
other_median=$(awk '{ print $2 }' "$OUT/other-work.txt" | median)
other_max=$(awk '{ print $2 }' "$OUT/other-work.txt" | sort -g | tail -n1)
backend_versions="SQLite $sqlite_version (bundled with libsqlite3-sys $lsys_version; a file in a temporary folder; WAL, \`synchronous=NORMAL\`, as the server opens it)"
if [[ " $BACKENDS " == *" postgres "* || " $BACKENDS " == *" distributed "* ]]; then
    backend_versions="$backend_versions; PostgreSQL $pg_version (a throw-away cluster on 127.0.0.1 started by the harness, on the same cores: Debian's default settings, \`shared_buffers\` $pg_shared_buffers, except \`$PG_SETTINGS\`, which flushes the WAL in the background like SQLite's \`synchronous=NORMAL\`)"
fi
if [[ " $BACKENDS " == *" distributed "* ]]; then
    backend_versions="$backend_versions; for the distributed backend, also Redis $redis_version and RabbitMQ $rabbitmq_version (throw-away servers on 127.0.0.1, same cores, Debian's defaults, no persistence for Redis)"
fi

# The distributed adapters' cost: the same PostgreSQL data set and scenarios
# with Redis and RabbitMQ added, per scenario against the postgres backend.
distributed_cost() {
    local n rps_p rps_d p50_p p50_d sv_p sv_d db_p db_d
    echo "| scenario | req/s, PostgreSQL → + Redis + RabbitMQ | ratio | p50 ms | server CPU per request | PostgreSQL (+ Redis + RabbitMQ) CPU per request | CPU per request, all processes |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for n in $SCENARIOS; do
        rps_p=$(med "$OUT/postgres/$n-[0-9]*.txt" rps)
        rps_d=$(med "$OUT/distributed/$n-[0-9]*.txt" rps)
        p50_p=$(med "$OUT/postgres/$n-[0-9]*.txt" p50_us)
        p50_d=$(med "$OUT/distributed/$n-[0-9]*.txt" p50_us)
        sv_p=$(cpu_med postgres "$n" "sv * 1e6 / $CLK_TCK / r")
        sv_d=$(cpu_med distributed "$n" "sv * 1e6 / $CLK_TCK / r")
        db_p=$(cpu_med postgres "$n" "g * 1e6 / $CLK_TCK / r")
        db_d=$(cpu_med distributed "$n" "g * 1e6 / $CLK_TCK / r")
        echo "| $n | $(fmt 0 "$rps_p") → **$(fmt 0 "$rps_d")** | $(fmt 2 "$(calc "$rps_d / $rps_p")") | $(ms 2 "$p50_p") → $(ms 2 "$p50_d") | $(fmt 0 "$sv_p") → $(fmt 0 "$sv_d") µs | $(fmt 0 "$db_p") → $(fmt 0 "$db_d") µs | $(fmt 0 "$(calc "$sv_p + $db_p")") → $(fmt 0 "$(calc "$sv_d + $db_d")") µs ($(fmt 0 "$(calc "$sv_d + $db_d - $sv_p - $db_p")") µs more) |"
    done
}

SECTION_FILE="$OUT/section.md"
{
    echo "<!-- bench:$SECTION:begin (written by bench/blog.sh; edits here are overwritten) -->"
    echo "## Blog: the RealWorld API on $(jq_seed "$first_backend" rows.blog_articles) articles"
    echo
    echo "Measured $measured_at by \`bash bench/blog.sh\` (${elapsed_min} minutes): each measurement run $REPS times,"
    echo "medians reported (raw output was in \`bench/out/$STAMP/\`, which git ignores)."
    echo
    echo "- **Machine:** $machine."
    echo "- **Code:** $code_desc; release build ($(release_profile "${SRC:-$ROOT}"))."
    echo "- **Databases:** $backend_versions."
    echo "- **Server:** default configuration (pool of 10 database connections, in-process cache of"
    echo "  article pages and tags, Tokio's default runtime) except the sign-in rate limits raised to"
    echo "  1,000,000 and log level \`warn\`; the distributed backend adds \`redis_url\` and \`amqp_url\`"
    echo "  (cache in Redis behind a local layer, rate limits in Redis, domain events through RabbitMQ)."
    echo "- **Data set** (\`bench/seed/seed.py\`, fixed random seed, written straight into the database after"
    echo "  \`basalt migrate\` in rows identical to the server's own): $(jq_seed "$first_backend" rows.identity_users) users"
    echo "  (and the account made by \`basalt user create\`, whose argon2id hash they all share); $(jq_seed "$first_backend" rows.blog_articles) articles over three"
    echo "  years by $(jq_seed "$first_backend" authors) authors (Zipf: the most prolific wrote $(jq_seed "$first_backend" prolific_author_articles)), Markdown bodies of"
    echo "  $(jq_seed "$first_backend" body_bytes.min)–$(jq_seed "$first_backend" body_bytes.max) bytes (median $(jq_seed "$first_backend" body_bytes.median)); $(jq_seed "$first_backend" rows.blog_article_tags) tags on them from a vocabulary of"
    echo "  $(jq_seed "$first_backend" tags_in_use) (Zipf: \`$(jq_seed "$first_backend" popular_tag)\` is on $(jq_seed "$first_backend" popular_tag_articles)); $(jq_seed "$first_backend" rows.blog_comments) comments and"
    echo "  $(jq_seed "$first_backend" rows.blog_favorites) favourites on articles of heavy-tailed popularity (up to $(jq_seed "$first_backend" comments_max_per_article) comments on one);"
    echo "  $(jq_seed "$first_backend" rows.blog_follows) follows. The $(jq_seed "$first_backend" readers) readers (signed-in scenarios, in rotation) each follow"
    echo "  $(jq_seed "$first_backend" reader_follows) authors ($(jq_seed "$first_backend" reader_feed_articles) articles in the first reader's feed); the"
    echo "  $(jq_seed "$first_backend" writers) writers (create) are followed by nobody."
    for b in $BACKENDS; do
        echo "  $(backend_title "$b"): seeded in $(fmt 0 "$(cat "$OUT/$b/seed-seconds.txt")") s, statistics included ($([ "$b" = sqlite ] && echo ANALYZE || echo "VACUUM ANALYZE")); database $(fmt 0 "$(calc "$(cat "$OUT/$b/db-kib.txt") / 1024")") MiB."
    done
    echo "- **Load:** \`wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s\` per measurement, on the same $CORES cores as the server"
    echo "  (and PostgreSQL), after ${WARMUP} s of warm-up of each scenario once per backend. $CONNECTIONS connections keep"
    echo "  both cores busy with requests queued behind the 10-connection pool, without measuring"
    echo "  mostly queueing; every request is formatted once in advance (\`bench/wrk/blog-get.lua\`,"
    echo "  \`blog-create.lua\`), so that wrk's own cost per request is the same in every scenario. \`article\`"
    echo "  and \`comments\` rotate over $(jq_seed "$first_backend" sample_slugs) slugs drawn at random from all articles (the"
    echo "  database files sit in the OS page cache); the signed-in scenarios rotate"
    echo "  over the readers' tokens; \`graphql\` and \`graphql-deep\` post one query body (\`bench/wrk/blog-post.lua\`:"
    echo "  the 20 articles of \`GET /api/articles\` with authors, tags and flags), the second \`after:\` a cursor"
    echo "  5,000 articles in, fetched once through the API before the runs; \`create\` gives every article a"
    echo "  title of its own and runs last, then \`create-one\` does the same from one client (\`wrk -t1 -c1\`)."
    echo "  List pages, single articles (not their comments) and tags are served from the server's cache"
    echo "  after their first request, signed-in readers' with their own flags looked up (\`crates/basalt-blog/src/pages.rs\`),"
    echo "  and so are GraphQL's keyset pages; a reader's feed pages are cached for that reader"
    echo "  (\`crates/basalt-blog/src/service/views.rs\`);"
    echo "  every write empties it, so the \`create\` runs go without."
    echo "- **Shared machine:** before each measurement the harness samples the machine for 2 s and waits"
    echo "  (up to $QUIET_BUDGET s in all) while more than $QUIET_PCT % of it is busy with other work; after it, it"
    echo "  repeats the measurement (up to $MAX_ATTEMPTS attempts) if more than $OTHER_MAX % of the machine's CPU went to"
    echo "  processes other than the server, wrk and PostgreSQL meanwhile."
    echo "- **Columns:** % of ceiling = req/s over the \`ceiling\` row's req/s on the same backend; server CPU"
    echo "  per request = the server process's CPU time over the requests served (PostgreSQL's: all its"
    echo "  processes'); context switches = the server's threads' switches over the requests (each query"
    echo "  hands work to a connection's thread and back); CPU = share of the"
    echo "  machine's 2 cores used by the server / wrk$([[ " $BACKENDS " == *" postgres "* ]] && echo " / PostgreSQL (PostgreSQL table)") / everything else (kernel"
    echo "  softirq, other processes), median over the runs; errors = non-2xx / socket errors / timeouts,"
    echo "  summed over the runs."
    for b in $BACKENDS; do
        echo
        echo "### $(backend_title "$b")"
        echo
        if [ "$b" = distributed ]; then
            echo "| scenario | request | req/s | % of ceiling | p50 ms | p99 ms | server CPU per request | PostgreSQL + Redis + RabbitMQ CPU per request | server context switches per request | CPU: server / wrk / PostgreSQL, Redis, RabbitMQ / other | errors | req/s per run |"
            echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        elif [ "$b" = postgres ]; then
            echo "| scenario | request | req/s | % of ceiling | p50 ms | p99 ms | server CPU per request | PostgreSQL CPU per request | server context switches per request | CPU: server / wrk / PostgreSQL / other | errors | req/s per run |"
            echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        else
            echo "| scenario | request | req/s | % of ceiling | p50 ms | p99 ms | server CPU per request | server context switches per request | CPU: server / wrk / other | errors | req/s per run |"
            echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        fi
        for n in $SCENARIOS; do
            scenario_line "$b" "$n"
        done
        echo
        read -r sa sf <"$OUT/$b/rss-start-split.txt"
        read -r wa wf <"$OUT/$b/rss-warm-split.txt"
        echo "Server memory (VmRSS): $(mib "$(cat "$OUT/$b/rss-start-kib.txt")") MiB idle just after start ($(mib "$sa") MiB anonymous: heap"
        echo "and stacks; $(mib "$sf") MiB file-backed: the binary's and libraries' pages in use),"
        echo "$(mib "$(cat "$OUT/$b/rss-warm-kib.txt")") MiB idle after the sign-ins and the warm-up ($(mib "$wa") + $(mib "$wf") MiB),"
        echo "$(mib "$(cat "$OUT/$b/rss-end-kib.txt")") MiB after the runs, peak"
        echo "$(mib "$(cat "$OUT/$b/rss-peak-kib.txt")") MiB (VmHWM). Cache lookups during the reads: $(cache_counts "$b" metrics-after-reads.txt)."
        echo "Server WARN/ERROR log lines: $(wc -l <"$OUT/$b/server-warnings.txt"); exit status after SIGTERM: $(cat "$OUT/$b/server-exit.txt")."
        if [ -s "$OUT/$b/server-warnings.txt" ]; then
            echo
            echo '```text'
            sed -E 's/^[^ ]+ +//' "$OUT/$b/server-warnings.txt" | cut -c1-160 | sort | uniq -c | sort -rn | head -n 3
            echo '```'
        fi
    done
    if [[ " $BACKENDS " == *" postgres "* && " $BACKENDS " == *" distributed "* ]]; then
        echo
        echo "### The distributed adapters' cost per request"
        echo
        echo "The same data set and load on PostgreSQL, with and without Redis and RabbitMQ (medians; CPU"
        echo "per request = CPU time over requests served, so it includes the work each request causes in"
        echo "the other processes):"
        echo
        distributed_cost
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
    line() { # LABEL FUNCTION ARGS...
        local label=$1 b row
        shift
        row="| $label |"
        for b in $BACKENDS; do row="$row $("$1" "$b" "${@:2}") |"; done
        echo "$row"
    }
    line "tags ≥ $GOAL_TAGS % of the ceiling" goal_cell tags "$GOAL_TAGS"
    line "list articles, anonymous, ≥ $GOAL_LIST % of the ceiling" goal_cell list "$GOAL_LIST"
    line "list articles, signed in, ≥ $GOAL_LIST_AUTH % of the ceiling" goal_cell list-auth "$GOAL_LIST_AUTH"
    line "one article ≥ $GOAL_ARTICLE % of the ceiling" goal_cell article "$GOAL_ARTICLE"
    line "feed ≥ $GOAL_FEED % of the ceiling with p99 ≤ $GOAL_FEED_P99_MS ms" feed_cell
    line "comments ≥ $GOAL_COMMENTS % of the ceiling" goal_cell comments "$GOAL_COMMENTS"
    line "one client's create p50 ≤ $GOAL_CREATE_1_P50_MS ms (set for PostgreSQL)" create_one_cell
    line "create ≥ $GOAL_CREATE_TIMES × the run of 2026-12-02" create_times_cell
    line "GraphQL page (graphql) ≥ $GOAL_GRAPHQL % of REST's (list-auth)" ratio_cell graphql list-auth "$GOAL_GRAPHQL"
    line "deep keyset page (graphql-deep) ≥ $GOAL_GRAPHQL_DEEP % of the first's (graphql)" ratio_cell graphql-deep graphql "$GOAL_GRAPHQL_DEEP"
    line "zero errors (all scenarios, all runs)" errors_cell
    line "idle RSS ≤ $GOAL_RSS_MB MB" rss_cell
    echo
    echo "Other people's work on the machine, just before / during the kept measurements: median"
    echo "$(pct0 "$background_median") % / $(pct0 "$other_median") %, max $(pct0 "$background_max") % / $(pct0 "$other_max") %; waited $quiet_waited s for quiet, repeated $repeated"
    echo "disturbed measurements, kept $disturbed still disturbed. Query plans and timings of this run:"
    echo "\`bench/out/$STAMP/<backend>/explain*.txt\` (\`bench/seed/explain.py\`, $analysis_sqlite for SQLite)."
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
# Replace this scenario's section, keep everything else.
if [ ! -f "$REPORT" ]; then
    cat >"$REPORT" <<'EOF'
# Benchmarks

Performance of Basalt, measured on a described machine with a load generator against the real
server and seeded data. Tests never assert performance; this file records measurements. Each
scenario's section is rewritten by the harness; every number is a median of repeated runs.
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
log "wrote the \"Blog\" section of $REPORT"
cat "$SECTION_FILE"
