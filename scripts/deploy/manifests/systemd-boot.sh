#!/usr/bin/env bash
# Runs deploy/systemd/basalt.service for real: boots a Debian 12 system
# (debootstrap, with systemd) in systemd-nspawn, installs the unit unchanged
# with the binary, basalt.env.example (on SQLite in the StateDirectory) and a
# metrics-token credential, and checks through the running system:
#   - the unit starts and /readyz answers 200;
#   - the process runs as a dynamic user, with NoNewPrivs, a seccomp filter,
#     no capabilities (effective and bounding set empty);
#   - the credential arrives: /metrics answers 401 without the token, 200 with;
#   - a sign-up and a sign-in work under the filters (argon2id hashing on
#     SCHED_IDLE threads pinned to CPUs);
#   - `systemd-analyze security` on the loaded unit stays at 2.0 or below;
#   - `systemctl stop` (SIGTERM) ends it cleanly: Result=success, exit 0,
#     "shutdown complete" logged, no warning in its journal.
# Not in the test command (a debootstrap downloads about 100 MB the first
# time; later runs reuse the cached root filesystem): run it by hand after
# changing the unit. Takes about 30 s warm.
#
# Usage: bash scripts/deploy/manifests/systemd-boot.sh [BINARY]
#   (default $BASALT_BIN, else ${CARGO_TARGET_DIR:-target}/release/basalt,
#   else .../debug/basalt). Root only (nspawn). Installs debootstrap and
#   systemd-container (apt) when missing.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root_dir=$(pwd)

[ "$(id -u)" -eq 0 ] || { echo "systemd-boot.sh must run as root (systemd-nspawn)" >&2; exit 1; }
bin=${1:-${BASALT_BIN:-}}
if [ -z "$bin" ]; then
    for b in "${CARGO_TARGET_DIR:-target}/release/basalt" "${CARGO_TARGET_DIR:-target}/debug/basalt"; do
        [ -x "$b" ] && { bin=$b; break; }
    done
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "no basalt binary (give its path)" >&2
    exit 1
fi

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o 'DPkg::Post-Invoke::=' install -y -qq "${need[@]}" >/dev/null
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/manifests-rootfs"
if [ ! -x "$cache/lib/systemd/systemd" ]; then
    echo "debootstrap bookworm (minbase + systemd) into $cache"
    rm -rf "$cache"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$cache" \
        "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$cache.log" 2>&1 ||
        { tail -20 "$cache.log" >&2; exit 1; }
fi

W=$(mktemp -d /tmp/basalt-systemd-boot.XXXXXX)
R=$W/root
nspawn_pid=
cleanup() {
    if [ -n "${sd:-}" ] && kill -0 "$sd" 2>/dev/null; then
        nsenter -t "$sd" -a /bin/systemctl poweroff 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    fi
    [ -z "$nspawn_pid" ] || kill "$nspawn_pid" 2>/dev/null || true
    [ -z "$nspawn_pid" ] || wait "$nspawn_pid" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
cp -a "$cache" "$R"

# What deploy/README.md ("One VPS") installs, the unit and env file as shipped.
install -m 0755 "$bin" "$R/usr/local/bin/basalt"
install -m 0644 deploy/systemd/basalt.service "$R/etc/systemd/system/basalt.service"
install -d -m 0755 "$R/etc/basalt"
install -d -m 0700 "$R/etc/basalt/credentials"
# SQLite in the state folder: no database URL.
sed 's|^BASALT_DATABASE_URL_FILE=|#&|' deploy/systemd/basalt.env.example >"$R/etc/basalt/basalt.env"
chmod 0640 "$R/etc/basalt/basalt.env"
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s' "$token" >"$R/etc/basalt/credentials/metrics_token")
ln -sf /etc/systemd/system/basalt.service "$R/etc/systemd/system/multi-user.target.wants/basalt.service"
echo basalt-boot >"$R/etc/hostname"

# Its own network namespace (loopback only): no port of this host is used.
# No machined or host bus here: --register=no --keep-unit.
systemd-nspawn -q -D "$R" --boot --register=no --keep-unit --private-network \
    --machine="basalt-boot-$$" >"$W/console.log" 2>&1 &
nspawn_pid=$!

# The container's systemd: a child of nspawn (or of its forked child).
sd=
for _ in $(seq 1 100); do
    for c in "$nspawn_pid" $(pgrep -P "$nspawn_pid" || true); do
        sd=$(pgrep -P "$c" -x systemd || true)
        [ -n "$sd" ] && break
    done
    [ -n "$sd" ] && break
    sleep 0.2
done
[ -n "$sd" ] || { echo "the container did not boot" >&2; tail -20 "$W/console.log" >&2; exit 1; }
in_ct() { nsenter -t "$sd" -a "$@"; }
http() { nsenter -t "$sd" -n curl -s -m 10 "$@"; }   # the host's curl in the container's network

failed=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failed=1; }

ready=
for _ in $(seq 1 150); do
    [ "$(http -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/readyz 2>/dev/null)" = 200 ] && { ready=1; break; }
    sleep 0.2
done
if [ -n "$ready" ]; then
    pass "unit started, /readyz 200"
else
    fail "unit did not become ready"
    in_ct /bin/systemctl status basalt --no-pager | sed 's/^/    /' || true
    exit 1
fi

main=$(in_ct /bin/systemctl show basalt -p MainPID --value)
# MainPID is in the container's PID namespace; on the host it is the basalt
# child of the container's systemd.
hostpid=$(pgrep -P "$sd" -x basalt | head -n 1)
status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$hostpid/status"; }
uid=$(status Uid)
if [ -n "$hostpid" ] && [ "$uid" -ne 0 ] && [ "$(status NoNewPrivs)" = 1 ] && [ "$(status Seccomp)" = 2 ] &&
    [ "$(status CapEff)" = 0000000000000000 ] && [ "$(status CapBnd)" = 0000000000000000 ]; then
    pass "process $main: uid $uid (dynamic), NoNewPrivs 1, seccomp filter, no capabilities"
else
    fail "process hardening: $(grep -E '^(Uid|NoNewPrivs|Seccomp|CapEff|CapBnd):' "/proc/$hostpid/status" | tr '\n' ' ')"
fi

no_token=$(http -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/metrics)
with_token=$(http -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" http://127.0.0.1:8080/metrics)
if [ "$no_token" = 401 ] && [ "$with_token" = 200 ]; then
    pass "credential: /metrics 401 without the token, 200 with it"
else
    fail "credential: /metrics $no_token without the token, $with_token with it"
fi

body='{"email":"boot@example.com","username":"boot-user","password":"Correct-Horse-Battery-9"}'
reg=$(http -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" http://127.0.0.1:8080/api/auth/register)
tok=$(http -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"email":"boot@example.com","password":"Correct-Horse-Battery-9"}' http://127.0.0.1:8080/api/auth/token)
if [ "$reg" = 201 ] && [ "$tok" = 200 ]; then
    pass "sign-up 201, sign-in 200 (argon2id under the filters)"
else
    fail "sign-up $reg, sign-in $tok"
fi

if sec=$(in_ct /bin/systemd-analyze security --threshold=20 basalt.service 2>&1); then
    pass "systemd-analyze security (loaded unit): $(printf '%s\n' "$sec" | tail -n 1)"
else
    fail "systemd-analyze security: $(printf '%s\n' "$sec" | tail -n 1)"
fi

in_ct /bin/systemctl stop basalt
result=$(in_ct /bin/systemctl show basalt -p Result --value)
code=$(in_ct /bin/systemctl show basalt -p ExecMainStatus --value)
journal=$(in_ct /bin/journalctl -u basalt --no-pager -o cat)
warnings=$(printf '%s\n' "$journal" | grep -cE '"level":"(WARN|ERROR)"' || true)
if [ "$result" = success ] && [ "$code" = 0 ] && grep -q 'shutdown complete' <<<"$journal" && [ "$warnings" = 0 ]; then
    pass "systemctl stop: Result=success, exit 0, shutdown complete, 0 warnings"
else
    fail "systemctl stop: Result=$result, exit $code, $warnings warning lines"
    printf '%s\n' "$journal" | tail -10 | sed 's/^/    /'
fi

[ "$failed" -eq 0 ] || { echo "systemd-boot: FAILED"; exit 1; }
echo "systemd-boot: the unit runs as shipped ($root_dir/deploy/systemd/basalt.service)"
