#!/usr/bin/env bash
# Property-based tests of the served OpenAPI document against the real
# binary (schemathesis, https://schemathesis.readthedocs.io): every operation
# with generated valid and invalid inputs, all checks (server errors, status
# codes, content types, response schemas and headers, refused invalid data,
# authentication, stateful links), signed out and then signed in with a
# RealWorld token (`Authorization: Token <jwt>`) of a user registered
# through the API. Bounded in time: about a minute and a half per database.
#
# Usage: bash scripts/schemathesis.sh [NAME [DATABASE_URL [REDIS_URL [AMQP_URL]]]]
#   NAME          a label for the output (default SQLite)
#   DATABASE_URL  an empty database (default: a new SQLite file)
# Environment: BASALT_BIN (default $CARGO_TARGET_DIR/debug/basalt),
#   ST_MAX_TIME (seconds per pass, default 40), ST_SEED (a seed to replay).
# scripts/test.sh calls it on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
# shellcheck source=scripts/lib/basalt-server.sh
source scripts/lib/basalt-server.sh

ST_VERSION=4.32.5
ST_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/schemathesis"
if ! "$ST_DIR/bin/st" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
    echo "installing schemathesis $ST_VERSION into $ST_DIR"
    python3 -m venv "$ST_DIR"
    "$ST_DIR/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

name=${1:-SQLite}
# Redis keys and RabbitMQ queues of its own: the signed-out pass uses up the
# sign-up rate limit of 127.0.0.1, which no later server must inherit.
basalt_serve schemathesis 18500 "${2:-}" "${3:-}" "${4:-}"
dir=$server_dir

# The signed-in pass's user, registered before the signed-out pass can use
# up the sign-up rate limit of this address.
stamp="$(date +%s%N)"
token=$(curl -sf -H 'Content-Type: application/json' \
    -d "{\"user\":{\"email\":\"st$stamp@example.com\",\"username\":\"st$stamp\",\"password\":\"Correct-Horse-Battery-9\"}}" \
    "$base/api/users" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["token"])')

# Switched off, with the reason:
# - positive_data_acceptance: it expects every request the schema allows to
#   succeed, but some refusals depend on state no schema can express: a
#   random reset or verification token (400), an email or username already
#   taken or a password on the list of leaked ones (422), following oneself
#   (422), a NUL in a JSON key the schema does not name (422; keys are free
#   since unknown fields are ignored). Invalid data must still be refused
#   (negative_data_rejection stays on), and every status must be documented.
# - negative_data_rejection on PATCH /api/me only: schemathesis 4.32.5's
#   coverage phase, run over the whole document, sometimes sends UpdateMe
#   without `email` as "Missing required property: email" and expects a
#   refusal, but UpdateMe requires nothing (every field is optional; the
#   identity `User` schema, with the same property names, requires email).
#   It does not happen with the operation tested alone: a schemathesis
#   fault, not the server's. Every other check still runs on it.
# - negative_data_rejection on POST /api/articles, for the same fault: the
#   coverage phase once sent `{"article": {…valid…}, "title": ""}` and
#   reported "title: String smaller than minLength" when the article was
#   created (the empty title is outside the article, where the wrapper
#   allows any extra member; the article's own title was valid). Invalid
#   articles are refused with 422, as the blog's tests show.
# - ensure_resource_availability under /api/articles/{slug}: in the
#   stateful phase, a PUT with `"regenerateSlug": true` (a RealWorld
#   extension: the article gets a new slug) may run between an article's
#   creation and a read by its old slug, whose 404 is right; schemathesis
#   4.32.5 allows for a DELETE in between (`resource_was_deleted`), not for
#   a resource that moved, and reported "created resource not found" once
#   (PostgreSQL pass, 2026-12-04). Every other check still runs there.
# They are set in this configuration file (checks given on the command line
# would override its per-operation settings); every other check is on, as
# schemathesis runs all of them by default.
cat >"$dir/schemathesis.toml" <<'TOML'
[checks]
positive_data_acceptance.enabled = false

[[operations]]
include-path = "/api/me"
include-method = "PATCH"
checks.negative_data_rejection.enabled = false

[[operations]]
include-path = "/api/articles"
include-method = "POST"
checks.negative_data_rejection.enabled = false

[[operations]]
include-path-regex = "^/api/articles/\\{slug\\}"
checks.ensure_resource_availability.enabled = false
TOML
# No operation is excluded. Rate-limited operations (sign-up, sign-in,
# password reset) answer 429 once the generated traffic exceeds the limit;
# that status is documented, so the status-code check accepts it.
status=0
run() {
    local label=$1; shift
    echo "==> schemathesis on $name, $label"
    # Run from the temporary folder: schemathesis keeps a cache of failures
    # to replay (.schemathesis/) and Hypothesis its data (.hypothesis/) in
    # the working directory; every run here starts from nothing.
    (cd "$dir" && "$ST_DIR/bin/st" --config-file "$dir/schemathesis.toml" run "$base/openapi.json" \
        --max-examples 20 --max-time "${ST_MAX_TIME:-40}" --workers 1 \
        ${ST_SEED:+--seed "$ST_SEED"} \
        --generation-database none --no-color \
        --report junit --report-dir "$dir/report-$label" \
        "$@") || status=$?
}
started=$SECONDS
run signed-out
# Two operations end every token of the signed-in account (sign-out
# everywhere; a password change through RealWorld's PUT /api/user, which
# needs no current password): run among the others, they would leave the
# rest of the pass signed out after their first success. They get a pass of
# their own, last; signed-out, they are in the first pass too.
ends_own_tokens=(--exclude-name "POST /api/auth/logout-all" --exclude-name "PUT /api/user")
run signed-in --header "Authorization: Token $token" "${ends_own_tokens[@]}"
ST_MAX_TIME=${ST_ENDING_MAX_TIME:-15} run signed-in-ending-its-tokens \
    --header "Authorization: Token $token" \
    --include-name "POST /api/auth/logout-all" --include-name "PUT /api/user"
echo "schemathesis on $name took $((SECONDS - started)) s"
if [ "$status" -ne 0 ]; then
    echo "--- server log ($name) ---"
    tail -50 "$dir/server.log"
fi
exit "$status"
