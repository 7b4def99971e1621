#!/usr/bin/env bash
# The chat protocol from outside the codebase: scripts/chat-clients/chat_client.py,
# written from docs/chat-protocol.md alone with PyPI `websockets` (pinned in
# scripts/chat-clients/requirements.txt, installed into a cache venv outside
# the clone when missing or changed), against the real binary: auth, frames,
# typing, presence, read state, error and close codes, a resume after a
# connection dropped in the middle of a burst, and REST history paging.
#
# Usage: bash scripts/chat-clients.sh [NAME [DATABASE_URL [REDIS_URL [AMQP_URL]]]]
#   NAME          a label for the output (default SQLite)
#   DATABASE_URL  an empty database (default: a new SQLite file)
# Environment: BASALT_BIN (default $CARGO_TARGET_DIR/debug/basalt),
#   CHAT_BURST (messages in the resume test's burst, default 2000).
# scripts/test.sh calls it on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/ports.sh
source scripts/lib/ports.sh
# shellcheck source=scripts/lib/basalt-server.sh
source scripts/lib/basalt-server.sh
# shellcheck source=scripts/lib/chat-venv.sh
source scripts/lib/chat-venv.sh

chat_venv
name=${1:-SQLite}
# The burst is sent by one user, far over the default 120 sends a minute; a
# short presence TTL lets "offline" show within seconds (the sweep runs
# every TTL/3).
# shellcheck disable=SC2034 # read by basalt_serve
basalt_serve_settings=(
    BASALT_CHAT__RATE_LIMITS__SENDS_PER_MINUTE=1000000
    BASALT_CHAT__PRESENCE_TTL_SECS=5
)
basalt_serve chat-clients 18700 "${2:-}" "${3:-}" "${4:-}"

status=0
echo "==> websockets (Python) speaks docs/chat-protocol.md to the server on $name"
"$CHAT_PYTHON" scripts/chat-clients/chat_client.py "$base" "${CHAT_BURST:-2000}" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- server log ($name) ---"
    tail -50 "$server_dir/server.log"
fi
exit "$status"
