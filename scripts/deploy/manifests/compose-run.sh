#!/usr/bin/env bash
# Runs the Basalt services of deploy/compose/compose.yaml (migrate, api1,
# worker) from the real image with podman, each container with exactly the
# settings Compose would give it, read from docker-compose's resolved model
# (compose_podman.py): read-only root, user 10001, no capabilities,
# no-new-privileges, the tmpfs mounts, the environment, the secrets as
# read-only files under /run/secrets. Only what a host without Docker needs
# differs: PostgreSQL, Redis and RabbitMQ run on loopback (the secret files
# hold their URLs), the containers share the host's network (each node's
# BASALT_LISTEN moves to a free loopback port), and podman gets this VM's
# runtime flags (as scripts/image-check.sh). Checks:
#   - migrate exits 0; the nodes start after it and /readyz answers;
#   - the image's HEALTHCHECK passes on both (`podman healthcheck run`);
#   - /metrics wants the token from the secret file (401, then 200);
#   - a sign-up through api1 is answered 201, and the worker sends its
#     verification mail (the job succeeds: the API node runs no workers);
#   - SIGTERM (the stop signal) ends both with exit 0, no warning logged.
# Not in the test command: it needs the image (bash scripts/image-check.sh
# builds it). Takes about 40 s.
#
# Usage: bash scripts/deploy/manifests/compose-run.sh [IMAGE]   (default localhost/basalt:latest)
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

image=${1:-localhost/basalt:latest}
venv="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/manifests"
py=$venv/bin/python
[ -x "$py" ] || { echo "run scripts/deploy/manifests.sh once first (it makes $venv)" >&2; exit 1; }
command -v podman >/dev/null || { echo "needs podman (apt-get install podman)" >&2; exit 1; }
podman image exists "$image" || { echo "no image $image (bash scripts/image-check.sh builds one)" >&2; exit 1; }

# This VM's podman quirks (scripts/image-check.sh explains them).
hard_nofile=$(ulimit -Hn)
hard_nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
[ "$hard_nofile" != unlimited ] && [ "$hard_nofile" -le 1048576 ] || hard_nofile=1048576
[ "$hard_nproc" != unlimited ] && [ "$hard_nproc" -le "$pid_max" ] || hard_nproc=$pid_max
pm() { podman --runtime runc "$@"; }
host_args=(--network host --ulimit "nofile=$hard_nofile:$hard_nofile" --ulimit "nproc=$hard_nproc:$hard_nproc")

W=$(mktemp -d /tmp/basalt-compose-run.XXXXXX)
chmod 0755 "$W"
tag=mf$$
containers=()
cleanup() {
    for c in "${containers[@]}"; do pm rm -f "$c" >/dev/null 2>&1 || true; done
    redis_stop "$W/redis" || true
    rabbitmq_stop "$W/rabbitmq" || true
    pg_stop "$W/pg" || true
    rm -rf "$W"
}
trap cleanup EXIT

alloc_port PG 27100
alloc_port REDIS 27200
alloc_port AMQP 27300
alloc_port DIST 27400
alloc_port API 27500
alloc_port WORKER 27600
pg_start "$W/pg" "$PG"
pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
$(pg_as) "$(pg_bindir)/psql" -q -h 127.0.0.1 -p "$PG" -U postgres \
    -c "CREATE ROLE basalt LOGIN PASSWORD '$pw'" -c 'CREATE DATABASE basalt OWNER basalt' postgres
redis_start "$W/redis" "$REDIS"
mkdir -p "$W/rabbitmq"
[ "$(id -u)" -ne 0 ] || chown rabbitmq "$W/rabbitmq"
rabbitmq_start "$W/rabbitmq" "$AMQP" "$DIST"

# The staged deploy/ with its secrets, pointed at the loopback services.
mkdir -p "$W/repo"
cp -r deploy "$W/repo/"
rm -rf "$W/repo/deploy/compose/secrets"
compose=$W/repo/deploy/compose
"$compose/make-secrets.sh" "$compose/secrets" >/dev/null
s=$compose/secrets
chmod u+w "$s"/*
printf 'postgres://basalt:%s@127.0.0.1:%s/basalt' "$pw" "$PG" >"$s/database_url"
printf 'redis://127.0.0.1:%s/0' "$REDIS" >"$s/redis_url"
printf 'amqp://guest:guest@127.0.0.1:%s/%%2f' "$AMQP" >"$s/amqp_url"
chmod 0444 "$s"/*
sed '/^name:/d' "$compose/compose.yaml" >"$compose/compose-1.29.yaml"
(cd "$compose" && docker-compose -f compose-1.29.yaml config 2>/dev/null) >"$W/resolved.yaml"

# run_service SERVICE DETACH [NAME=VALUE...]: the service's container, as Compose configures it.
run_service() {
    local service=$1 line args=() cmd=() after="" flags=()
    [ -z "$2" ] || flags=("$2")
    shift 2
    while IFS= read -r line; do
        if [ "$line" = -- ]; then after=1; continue; fi
        if [ -n "$after" ]; then cmd+=("$line"); else args+=("$line"); fi
    done < <("$py" scripts/deploy/manifests/compose_podman.py "$W/resolved.yaml" "$service" "$@")
    containers+=("$tag-$service")
    # (podman warns that this host has no systemd for health-check timers)
    pm run "${flags[@]}" --name "$tag-$service" "${host_args[@]}" "${args[@]}" "$image" "${cmd[@]}" 2> >(grep -v "systemd connection" >&2)
}

failed=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failed=1; }

if run_service migrate "" >"$W/migrate.log" 2>&1; then
    pass "migrate: exit 0 ($(tail -n 1 "$W/migrate.log" | cut -c1-80))"
else
    fail "migrate"
    sed 's/^/    /' "$W/migrate.log"
    exit 1
fi
run_service api1 -d "BASALT_LISTEN=127.0.0.1:$API" >/dev/null
run_service worker -d "BASALT_LISTEN=127.0.0.1:$WORKER" >/dev/null

wait_ready() {
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}
for n in api1:$API worker:$WORKER; do
    if wait_ready "${n#*:}"; then pass "${n%%:*}: /readyz 200"; else
        fail "${n%%:*} not ready"
        pm logs "$tag-${n%%:*}" 2>&1 | tail -5 | sed 's/^/    /'
    fi
done
# The HEALTHCHECK probes the port in BASALT_LISTEN, which the override moved.
for n in api1 worker; do
    if pm healthcheck run "$tag-$n" >/dev/null 2>&1; then pass "$n: image HEALTHCHECK healthy"; else fail "$n: HEALTHCHECK"; fi
done

token=$(cat "$s/metrics_token")
m0=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API/metrics")
m1=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$API/metrics")
if [ "$m0" = 401 ] && [ "$m1" = 200 ]; then pass "metrics token from the secret file: 401 without, 200 with"; else
    fail "metrics: $m0 without the token, $m1 with"
fi

reg=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"email":"compose@example.com","username":"compose-user","password":"Correct-Horse-Battery-9"}' \
    "http://127.0.0.1:$API/api/auth/register")
sent=
for _ in $(seq 1 100); do
    sent=$($(pg_as) "$(pg_bindir)/psql" -tA -h 127.0.0.1 -p "$PG" -U postgres basalt \
        -c "SELECT count(*) FROM jobs WHERE kind = 'identity.send_link' AND state = 'succeeded'")
    [ "$sent" = 1 ] && break
    sleep 0.2
done
if [ "$reg" = 201 ] && [ "$sent" = 1 ]; then pass "sign-up 201 through api1; the worker sent its mail (job succeeded)"; else
    fail "sign-up $reg; verification-mail jobs succeeded: $sent"
fi

for n in api1 worker; do
    pm stop -t 90 "$tag-$n" >/dev/null 2>&1 || true
    code=$(pm inspect "$tag-$n" --format '{{.State.ExitCode}}')
    logs=$(pm logs "$tag-$n" 2>&1 | grep -v '^time=' || true)
    warn=$(printf '%s\n' "$logs" | grep -cE '"level":"(WARN|ERROR)"' || true)
    if [ "$code" = 0 ] && [ "$warn" = 0 ] && grep -q 'shutdown complete' <<<"$logs"; then
        pass "$n: SIGTERM, exit 0, shutdown complete, 0 warnings"
    else
        fail "$n: exit $code, $warn warning lines"
        printf '%s\n' "$logs" | grep -E '"level":"(WARN|ERROR)"' | head -5 | sed 's/^/    /'
    fi
done

[ "$failed" -eq 0 ] || { echo "compose-run: FAILED"; exit 1; }
echo "compose-run: the Basalt services of compose.yaml run as configured ($image)"
