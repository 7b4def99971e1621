# Shell functions shared by Basalt's benchmark harnesses (bench/run.sh,
# bench/blog.sh). Sourced, never run; defining the functions has no side
# effect. Some of them use the caller's globals:
#   OUT           the run's output folder (bench/out/<timestamp>)
#   SERVER_PID    the server under test, once started (may be empty)
#   CORES         number of CPUs (nproc)
#   QUIET_PCT, QUIET_BUDGET, quiet_waited   see wait_quiet
# and the caller's log and die functions.

# Installs wrk with apt when it is missing.
ensure_wrk() {
    if ! command -v wrk >/dev/null 2>&1; then
        log "installing wrk with apt"
        # -o DPkg::Post-Invoke:: keeps apt's cache intact on machines whose
        # post-invoke hook deletes .deb files between dpkg runs.
        if ! apt-get -o 'DPkg::Post-Invoke::=' install -y wrk >>"$OUT/apt.log" 2>&1; then
            apt-get update >>"$OUT/apt.log" 2>&1
            apt-get -o 'DPkg::Post-Invoke::=' install -y wrk >>"$OUT/apt.log" 2>&1 \
                || die "cannot install wrk (see $OUT/apt.log)"
        fi
    fi
}

# Median of the numbers on stdin (one per line).
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.6g\\n\", $1 }"; }
# fmt DECIMALS NUMBER
fmt() { awk -v d="$1" -v x="$2" 'BEGIN { printf "%.*f", d, x }'; }
# pct0 NUMBER: a CPU share as a whole percentage; the small negative values
# that come from two clocks (per process and per machine) read as 0.
pct0() { awk -v x="$1" 'BEGIN { printf "%.0f", (x < 0.5 ? 0 : x) }'; }
# field FILE KEY: a value of the BENCH summary line printed by bench/wrk/common.lua.
field() {
    grep -m1 '^BENCH ' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}
# CPU clock ticks used so far by a process (user + system).
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Whole machine, ticks so far: "busy steal total iowait" (busy = user, nice,
# system, irq, softirq; steal = time the hypervisor gave to someone else;
# iowait = idle while some task waited for the disk).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $6 }' /proc/stat; }

# Percentage of the machine busy over 2 s with work that is not the server's
# (when nothing of ours runs, this is other people's builds and tests: the
# measurements wait for it to calm down).
background_busy() {
    local b0 s0 t0 b1 s1 t1 p0=0 p1=0
    [ -n "${SERVER_PID:-}" ] && p0=$(proc_ticks "$SERVER_PID")
    read -r b0 s0 t0 _ < <(machine_ticks)
    sleep 2
    read -r b1 s1 t1 _ < <(machine_ticks)
    [ -n "${SERVER_PID:-}" ] && p1=$(proc_ticks "$SERVER_PID")
    calc "100 * ($b1 - $b0 - ($p1 - $p0)) / ($t1 - $t0)"
}
# The busiest process right now, for the log.
busiest() {
    top -bn2 -d1 -w 200 2>/dev/null \
        | awk '/^top -/ { n++ } n == 2 && $1 ~ /^[0-9]+$/ { print $12, "(" $9 " % CPU)"; exit }' || true
}
# wait_quiet LABEL: waits (bounded) until the machine is quiet; records the
# background load seen just before the measurement LABEL. "Quiet" = at most
# QUIET_PCT % of the machine busy; waits QUIET_BUDGET seconds at most in all
# (counted in quiet_waited), then measures anyway.
wait_quiet() {
    local busy
    while :; do
        busy=$(background_busy)
        awk -v b="$busy" -v q="$QUIET_PCT" 'BEGIN { exit !(b <= q) }' && break
        if [ "$quiet_waited" -ge "$QUIET_BUDGET" ]; then
            log "  machine $(fmt 0 "$busy") % busy before $1, waiting budget spent: measuring anyway"
            break
        fi
        log "  machine $(fmt 0 "$busy") % busy (not ours; busiest: $(busiest)) before $1: waiting"
        sleep 7
        quiet_waited=$((quiet_waited + 10))
    done
    echo "$1 $busy" >>"$OUT/background.txt"
}

# One line describing the machine: CPU, cores, VM, memory, kernel, rustc, wrk (if installed).
describe_machine() {
    local cpu_model threads_per_core hypervisor mem_gib kernel rustc_version wrk_version machine
    cpu_model=$(lscpu 2>/dev/null | awk -F: '/^Model name/ { sub(/^[ \t]+/, "", $2); print $2; exit }')
    [ -n "$cpu_model" ] || cpu_model=$(awk -F: '/^model name/ { sub(/^[ \t]+/, "", $2); print $2; exit }' /proc/cpuinfo)
    threads_per_core=$(lscpu 2>/dev/null | awk -F: '/^Thread\(s\) per core/ { gsub(/[ \t]/, "", $2); print $2; exit }')
    hypervisor=$(lscpu 2>/dev/null | awk -F: '/^Hypervisor vendor/ { sub(/^[ \t]+/, "", $2); print $2; exit }')
    mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
    kernel=$(uname -sr)
    rustc_version=$(rustc --version)
    wrk_version=""
    command -v wrk >/dev/null 2>&1 && wrk_version=$(wrk --version 2>&1 | head -n1 | awk '{ print $1, $2 }' || true)
    machine="$cpu_model; $CORES cores (nproc)"
    [ -n "$threads_per_core" ] && machine="$machine, $threads_per_core thread(s) per core"
    [ -n "$hypervisor" ] && machine="$machine, virtual machine ($hypervisor)"
    echo "$machine; $mem_gib GiB RAM; $kernel; $rustc_version${wrk_version:+; $wrk_version}"
}

# build_release SRC LOG CARGO_BUILD_ARGS...: `cargo build --release ARGS` in
# SRC, output to LOG. Cargo judges freshness by the paths and mtimes its last
# build recorded, and the HEAD export lives inside the target folder
# (bench-src/), so those paths are recorded relative to the target folder: a
# build of another folder with the same packages (--worktree after a HEAD run)
# checked the export's files instead of its own, found them unchanged, and
# kept the old binary. So whenever the sources differ from those of the last
# build here (a sha256 over crates/ and the manifests), the workspace's own
# packages are cleaned first and rebuilt; dependencies are kept.
build_release() {
    local src=$1 log=$2 stamp="$CARGO_TARGET_DIR/bench-last-build" sources manifest packages=()
    shift 2
    sources="$src $(cd "$src" && find crates Cargo.toml Cargo.lock -type f ! -path '*/target/*' -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$sources" ]; then
        rm -f "$stamp"
        for manifest in "$src"/crates/*/Cargo.toml; do
            packages+=(-p "$(awk -F'"' '/^name *=/ { print $2; exit }' "$manifest")")
        done
        (cd "$src" && cargo clean --release "${packages[@]}") >>"$log" 2>&1 || return 1
    fi
    (cd "$src" && cargo build --release "$@") >>"$log" 2>&1 || return 1
    echo "$sources" >"$stamp"
}

# release_profile ROOT: the release profile's LTO and opt-level, as written in
# ROOT/Cargo.toml, for the reports.
release_profile() {
    awk '/^\[/ { in_release = ($0 == "[profile.release]") }
         in_release && /^lto *=/ { gsub(/[" ]/, "", $3); lto = $3 }
         in_release && /^opt-level *=/ { gsub(/[" ]/, "", $3); opt = $3 }
         END { printf "%s LTO, opt-level %s except the packages Cargo.toml raises", lto ? lto : "off", opt ? opt : 3 }' "$1/Cargo.toml"
}

# Exports the committed code (HEAD of $1) into a folder of its own under
# $CARGO_TARGET_DIR/bench-src, unless it is there already, and removes older
# exports (a build's fingerprints point into the current one only). Sets
# SRC (the folder), head_commit and code_desc (for the report).
export_head() {
    local root=$1 snapshots
    head_commit=$(git -C "$root" rev-parse HEAD) || die "not a git checkout: use --worktree"
    snapshots="$CARGO_TARGET_DIR/bench-src"
    SRC="$snapshots/${head_commit:0:12}"
    if [ ! -d "$SRC" ]; then
        log "exporting HEAD (${head_commit:0:12}) to $SRC"
        rm -rf "$SRC.partial"
        mkdir -p "$SRC.partial"
        git -C "$root" archive --format=tar HEAD | tar -x -C "$SRC.partial"
        mv "$SRC.partial" "$SRC"
    fi
    find "$snapshots" -mindepth 1 -maxdepth 1 -type d ! -path "$SRC" -exec rm -rf {} + 2>/dev/null || true
    code_desc="commit ${head_commit:0:7} (HEAD, built from a clean export)"
}
