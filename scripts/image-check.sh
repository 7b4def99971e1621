#!/usr/bin/env bash
# Proves that the Dockerfile builds and that its image runs, on this machine:
# no Docker engine, no Docker Hub. With Debian's podman it
#   1. makes the base images locally, once (kept in podman's storage):
#      - localhost/basalt-base/debian:bookworm, a `debootstrap --variant=minbase`
#        rootfs imported as an image (the stand-in for debian:bookworm-slim);
#      - localhost/basalt-base/rust:<version>-bookworm, that plus gcc and this
#        machine's Rust toolchain (scripts/image/builder.Containerfile; the
#        stand-in for rust:*-bookworm: Debian 12's rustc, 1.63, is far below
#        the workspace's rust-version);
#   2. builds the Dockerfile with those bases as BUILDER_IMAGE/RUNTIME_IMAGE;
#   3. checks the image's metadata (user, health check, stop signal, labels…);
#   4. runs it as a hardened container would run (read-only root, all
#      capabilities dropped, a named volume for /var/lib/basalt, published on
#      a free loopback port), waits for its own HEALTHCHECK to report
#      healthy, signs up, signs in and reads the user back over HTTP;
#   5. stops it with its STOPSIGNAL (SIGTERM) and wants exit code 0 and the
#      graceful-shutdown log line;
#   6. removes the container and the volume (an EXIT trap, on failure too).
# Any failed step fails the run.
#
# Usage: sudo bash scripts/image-check.sh
# Environment:
#   IMAGE_CHECK_REBUILD_BASES=1  make the base images again (a new Debian
#                                point release, another toolchain)
#   DEBIAN_MIRROR                debootstrap's mirror (default deb.debian.org)
#
# What is kept for the next run, and where:
#   - the base images and the built image's layers: podman's storage
#     (/var/lib/containers/storage; `podman images`);
#   - the cargo registry and the release target folder of the build's cache
#     mounts: $CACHE/tmp/buildah-cache/basalt-{cargo-registry,target}, with
#     CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/basalt/image (buildah puts cache
#     mounts under TMPDIR, which points there).
# Measured here (2 cores, 2026-12-04): cold (no base image, no cache) 6 min
# 20 s, of which the release build is 5 min 20 s (18 min when other builds
# share the cores), the bases 50 s; warm after a change to the basalt crate
# 1 min 37 s (that crate recompiled and linked); warm with no change 3 s
# (every layer cached). Each build after a change leaves an untagged
# image of about 35 MB of new layers: `podman image prune` drops them (and
# the layer cache, not the cache mounts).
# Kept between runs: 1.3 GB of target and 0.3 GB of registry cache mounts,
# 1.2 GB of podman storage (the bases, mostly the builder's toolchain).
# What this VM needs, found by trying (each one is applied below):
#   - `--runtime runc`: crun 1.8 (podman's default) refuses this host's
#     hybrid cgroup layout ("cgroups in hybrid mode not supported").
#   - explicit `--ulimit`s: podman asks for nofile=1048576 and a large
#     nproc by default, above this host's hard limits, and the container
#     has no CAP_SYS_RESOURCE to raise them ("setrlimit … not permitted").
#     nproc above kernel.pid_max fails the same way.
#   - `--network host` for the build: RUN steps reach crates.io and the
#     Debian mirror through the host's network.
#   - the host's extra CA certificates in the builder base: egress here goes
#     through a TLS-inspecting proxy, whose CA cargo must trust.
#   - `--format docker`: the OCI image format has no HEALTHCHECK (podman
#     drops it with a warning).
#   - no systemd here, so podman runs no health-check timer (and logs
#     "unable to get systemd connection to add healthchecks" on `run` and
#     `rm`, harmless): this script
#     runs the image's health check with `podman healthcheck run`, which is
#     what the timer would do, and reads the container's health status.
# The overlay storage driver works on this ext4 root; no vfs, no chroot
# isolation needed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh

started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }
fail() {
    echo "image-check: FAILED: $*" >&2
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    exec sudo --preserve-env=XDG_CACHE_HOME,DEBIAN_MIRROR,IMAGE_CHECK_REBUILD_BASES,RUSTUP_HOME,CARGO_HOME \
        bash "$0" "$@"
fi

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/image"
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
RUNTIME_BASE=localhost/basalt-base/debian:bookworm
IMAGE=localhost/basalt:check
NAME="basalt-image-check-$$"
VOLUME="basalt-image-check-data-$$"
mkdir -p "$CACHE/tmp"
export TMPDIR="$CACHE/tmp"

step "tools"
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o 'DPkg::Post-Invoke::=' install -y -qq "${missing[@]}" >/dev/null
fi
podman --version

# The limits containers get: this shell's hard limits, capped where podman's
# defaults would ask for more than the host allows (see above).
hard_nofile=$(ulimit -Hn)
hard_nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
[ "$hard_nofile" != unlimited ] && [ "$hard_nofile" -le 1048576 ] || hard_nofile=1048576
[ "$hard_nproc" != unlimited ] && [ "$hard_nproc" -le "$pid_max" ] || hard_nproc=$pid_max
LIMITS=(--ulimit "nofile=$hard_nofile:$hard_nofile" --ulimit "nproc=$hard_nproc:$hard_nproc")
pm() { podman --runtime runc "$@"; }

step "base images"
if [ "${IMAGE_CHECK_REBUILD_BASES:-0}" = 1 ] || ! pm image exists "$RUNTIME_BASE"; then
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    echo "debootstrap --variant=minbase bookworm into $rootfs"
    debootstrap --variant=minbase bookworm "${rootfs:?}" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -20 "$CACHE/debootstrap.log"; rm -rf "${rootfs:?}"; fail "debootstrap"; }
    # The suites debian:bookworm-slim has, so that apt-get in the image
    # gets the point-release and security updates.
    cat >"${rootfs:?}/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    # Slim as debian:bookworm-slim: no apt caches, documentation, manuals or
    # logs of the bootstrap, and dpkg told to skip documentation from now on;
    # no copy of this host's resolv.conf (the container runtime provides
    # /etc/hosts, /etc/hostname and /etc/resolv.conf).
    rm -rf "${rootfs:?}"/var/cache/apt/*.bin "${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/lib/apt/lists/* \
        "${rootfs:?}"/var/log/*.log "${rootfs:?}"/usr/share/man/* "${rootfs:?}"/usr/share/info/*
    find "${rootfs:?}/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    cat >"${rootfs:?}/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
EOF
    : >"${rootfs:?}/etc/resolv.conf"
    : >"${rootfs:?}/etc/hosts"
    : >"${rootfs:?}/etc/hostname"
    tar --numeric-owner -C "${rootfs:?}" -c . |
        pm import --change 'CMD ["bash"]' --message "debootstrap minbase bookworm" - "$RUNTIME_BASE" >/dev/null
    rm -rf "$rootfs"
fi

# The toolchain this repository builds with: rustup's choice here (it
# follows rust-toolchain.toml), or the cargo on PATH.
if command -v rustup >/dev/null; then
    cargo_bin=$(rustup which cargo)
else
    cargo_bin=$(readlink -f "$(command -v cargo)")
fi
toolchain=$(dirname "$(dirname "$cargo_bin")")
rust_version=$("$toolchain/bin/rustc" --version | awk '{ print $2 }')
BUILDER_BASE="localhost/basalt-base/rust:$rust_version-bookworm"
if [ "${IMAGE_CHECK_REBUILD_BASES:-0}" = 1 ] || ! pm image exists "$BUILDER_BASE"; then
    context=$(mktemp -d "$CACHE/builder-context.XXXXXX")
    echo "builder base from $toolchain (rustc $rust_version)"
    mkdir -p "$context/rust/share" "$context/ca"
    for entry in bin lib libexec etc; do
        [ ! -e "$toolchain/$entry" ] || cp -a "$toolchain/$entry" "$context/rust/"
    done
    for entry in "$toolchain"/share/*; do
        [ "$(basename "$entry")" = doc ] || cp -a "$entry" "$context/rust/share/"
    done
    cp /usr/local/share/ca-certificates/*.crt "$context/ca/" 2>/dev/null || true
    pm build "${LIMITS[@]}" --network host --build-arg "BASE_IMAGE=$RUNTIME_BASE" \
        -f scripts/image/builder.Containerfile -t "$BUILDER_BASE" "$context" >"$CACHE/builder-base.log" 2>&1 ||
        { tail -20 "$CACHE/builder-base.log"; rm -rf "${context:?}"; fail "builder base"; }
    rm -rf "${context:?}"
fi
echo "runtime base $RUNTIME_BASE, builder base $BUILDER_BASE"

step "build the Dockerfile"
version=$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# --format docker keeps the HEALTHCHECK; --network host lets RUN steps reach
# crates.io and the Debian mirror; --layers (the default) keeps each step's
# layer as the cache of the next run. The two --label options repeat the
# Dockerfile's last LABEL: buildah 1.28 takes that step from its cache even
# when VERSION or REVISION changed.
if ! pm build --format docker --layers --network host "${LIMITS[@]}" \
    --build-arg "BUILDER_IMAGE=$BUILDER_BASE" --build-arg "RUNTIME_IMAGE=$RUNTIME_BASE" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    -f Dockerfile -t "$IMAGE" . >"$CACHE/build.log" 2>&1; then
    tail -40 "$CACHE/build.log"
    fail "podman build (log: $CACHE/build.log)"
fi
grep -E '^(\[[0-9]/[0-9]\] )?STEP|Using cache|Finished' "$CACHE/build.log" | cut -c1-120 || true
pm image ls "$IMAGE" --format '{{.Repository}}:{{.Tag}} {{.Size}}'

step "image metadata"
pm image inspect "$IMAGE" --format '{{json .}}' | python3 -c '
import json, sys
image = json.load(sys.stdin)
image = image[0] if isinstance(image, list) else image
config = image["Config"]
health = image.get("Healthcheck") or config.get("Healthcheck") or {}
labels = config.get("Labels") or {}
problems = []
def want(what, got, expected):
    if got != expected:
        problems.append(f"{what}: {got!r}, expected {expected!r}")
want("user", config.get("User"), "10001:10001")
want("entrypoint", config.get("Entrypoint"), ["basalt"])
want("cmd", config.get("Cmd"), ["serve"])
want("stop signal", config.get("StopSignal"), "SIGTERM")
want("exposed ports", sorted(config.get("ExposedPorts") or {}), ["8080/tcp"])
want("volumes", sorted(config.get("Volumes") or {}), ["/var/lib/basalt"])
env = dict(e.split("=", 1) for e in config.get("Env") or [])
want("BASALT_DATA_DIR", env.get("BASALT_DATA_DIR"), "/var/lib/basalt")
want("health check", health.get("Test"), ["CMD", "basalt", "healthcheck"])
for key in ("title", "description", "source", "licenses", "version", "revision"):
    if labels.get(f"org.opencontainers.image.{key}") in (None, "", "unknown"):
        problems.append(f"label org.opencontainers.image.{key} missing")
want("revision label", labels.get("org.opencontainers.image.revision"), sys.argv[1])
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("user, entrypoint, cmd, STOPSIGNAL, EXPOSE, VOLUME, HEALTHCHECK and OCI labels as expected")
' "$revision" || fail "image metadata"

cleanup() {
    pm rm --force --time 0 "$NAME" >/dev/null 2>&1 || true
    pm volume rm --force "$VOLUME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "run"
port=""
alloc_port port 18700
base="http://127.0.0.1:$port"
# As a hardened orchestrator would run it: read-only root (podman mounts
# tmpfs on /tmp, /var/tmp and /run), no capabilities, no privilege gain,
# state in a named volume, which podman fills from the image's
# /var/lib/basalt (owned by the basalt user) on first use.
pm volume create "$VOLUME" >/dev/null
pm run -d --name "$NAME" "${LIMITS[@]}" \
    --read-only --cap-drop all --security-opt no-new-privileges \
    -v "$VOLUME:/var/lib/basalt" -p "127.0.0.1:$port:8080" \
    -e BASALT_LOG_LEVEL=info "$IMAGE" >/dev/null
echo "container $NAME on $base"

step "wait for the image's health check"
status=""
for _ in $(seq 1 60); do
    state=$(pm inspect "$NAME" --format '{{.State.Status}}')
    [ "$state" = running ] || { pm logs "$NAME" | tail -30; fail "the container is $state"; }
    # Runs the image's HEALTHCHECK command in the container and records
    # the result, as podman's timer would.
    pm healthcheck run "$NAME" >/dev/null 2>&1 || true
    status=$(pm inspect "$NAME" --format '{{.State.Health.Status}}')
    [ "$status" = healthy ] && break
    sleep 1
done
[ "$status" = healthy ] || { pm logs "$NAME" | tail -30; fail "health status '$status', never healthy"; }
echo "health: $status"

step "sign up, sign in, read the user back"
stamp=$(date +%s%N)
email="image$stamp@example.com"
username="image$stamp"
password="Correct-Horse-Battery-9"
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)["user"][sys.argv[1]])' "$1"; }
signup=$(curl -sS --fail-with-body -m 20 -H 'Content-Type: application/json' \
    -d "{\"user\":{\"email\":\"$email\",\"username\":\"$username\",\"password\":\"$password\"}}" \
    "$base/api/users") || fail "sign-up: $signup"
[ "$(json_field username <<<"$signup")" = "$username" ] || fail "sign-up answered $signup"
login=$(curl -sS --fail-with-body -m 20 -H 'Content-Type: application/json' \
    -d "{\"user\":{\"email\":\"$email\",\"password\":\"$password\"}}" \
    "$base/api/users/login") || fail "sign-in: $login"
token=$(json_field token <<<"$login")
me=$(curl -sS --fail-with-body -m 20 -H "Authorization: Token $token" "$base/api/user") ||
    fail "GET /api/user: $me"
[ "$(json_field email <<<"$me")" = "$email" ] || fail "GET /api/user answered $me"
echo "signed up and in as $username; GET /api/user with the token answers the same user"
# A wrong password is refused: the sign-in above was a real check.
code=$(curl -s -o /dev/null -w '%{http_code}' -m 20 -H 'Content-Type: application/json' \
    -d "{\"user\":{\"email\":\"$email\",\"password\":\"not-$password\"}}" "$base/api/users/login")
[ "$code" = 401 ] || fail "a wrong password answered $code"

step "state only in the volume"
data=$(pm volume inspect "$VOLUME" --format '{{.Mountpoint}}')
[ -s "$data/basalt.db" ] || fail "no basalt.db in the volume ($data)"
owner=$(stat -c %u "$data/basalt.db")
[ "$owner" = 10001 ] || fail "basalt.db belongs to uid $owner, not 10001"
# podman's own mount points (/etc/hosts, /etc/hostname, /etc/resolv.conf,
# created in /etc when the base lacks them) are not the server's writes.
changed=$(pm diff "$NAME" | grep -Ev '^[ACD] /etc(/hosts|/hostname|/resolv\.conf)?$' || true)
[ -z "$changed" ] || fail "the container changed its root filesystem: $changed"
echo "basalt.db in the volume, owned by 10001; nothing written to the root filesystem"

step "stop with SIGTERM"
# `podman stop` sends the image's STOPSIGNAL and kills after --time
# seconds: a kill would show as exit code 137.
pm stop --time 30 "$NAME" >/dev/null
exit_code=$(pm inspect "$NAME" --format '{{.State.ExitCode}}')
logs=$(pm logs "$NAME" 2>&1)
[ "$exit_code" = 0 ] || { tail -20 <<<"$logs"; fail "exit code $exit_code after SIGTERM"; }
grep -q 'shutdown requested' <<<"$logs" || { tail -20 <<<"$logs"; fail "no 'shutdown requested' log line"; }
grep -q 'shutdown complete' <<<"$logs" || { tail -20 <<<"$logs"; fail "no 'shutdown complete' log line"; }
echo "exit code 0, graceful shutdown logged"

step "done"
echo "image-check: passed in $(($(date +%s) - started))s (image $IMAGE, caches under $CACHE and podman's storage)"
