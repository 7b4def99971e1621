#!/usr/bin/env bash
# Third-party GraphQL clients against the real binary: graphql-js 16, the
# reference implementation (npm `graphql`), validates every example
# operation of docs/graphql/ against the schema it introspects from the
# server (scripts/graphql-clients/validate.mjs); the Python client gql
# (PyPI `gql`, over aiohttp and websockets) runs those operations as two
# users signed up through REST: queries, every mutation, subscriptions over
# graphql-transport-ws and graphql-ws, and error codes
# (scripts/graphql-clients/gql_client.py). Both are pinned
# (scripts/graphql-clients/package-lock.json, requirements.txt) and
# installed into caches outside the clone when missing or changed.
#
# Usage: bash scripts/graphql-clients.sh [NAME [DATABASE_URL [REDIS_URL [AMQP_URL]]]]
#   NAME          a label for the output (default SQLite)
#   DATABASE_URL  an empty database (default: a new SQLite file)
# Environment: BASALT_BIN (default $CARGO_TARGET_DIR/debug/basalt).
# scripts/test.sh calls it on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
# shellcheck source=scripts/lib/basalt-server.sh
source scripts/lib/basalt-server.sh

CLIENTS=scripts/graphql-clients
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/graphql-clients"
# npm: `npm ci` of the lock file, again whenever the lock file changes.
NPM_DIR="$CACHE/npm"
if ! cmp -s "$CLIENTS/package-lock.json" "$NPM_DIR/package-lock.json"; then
    echo "installing graphql-js (npm ci) into $NPM_DIR"
    rm -rf "$NPM_DIR"
    mkdir -p "$NPM_DIR"
    cp "$CLIENTS/package.json" "$CLIENTS/package-lock.json" "$NPM_DIR/"
    (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# PyPI: a virtual environment of the pinned requirements, likewise.
VENV="$CACHE/venv"
if ! cmp -s "$CLIENTS/requirements.txt" "$VENV/requirements.txt"; then
    echo "installing gql into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$CLIENTS/requirements.txt"
    cp "$CLIENTS/requirements.txt" "$VENV/requirements.txt"
fi

name=${1:-SQLite}
basalt_serve graphql-clients 18600 "${2:-}" "${3:-}" "${4:-}"

status=0
echo "==> graphql-js validates docs/graphql/ against the schema of the server on $name"
GRAPHQL_CLIENTS_DIR="$NPM_DIR" node "$CLIENTS/validate.mjs" "$base" docs/graphql || status=$?
echo "==> gql (Python) runs docs/graphql/ against the server on $name"
"$VENV/bin/python" "$CLIENTS/gql_client.py" "$base" docs/graphql || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- server log ($name) ---"
    tail -50 "$server_dir/server.log"
fi
exit "$status"
