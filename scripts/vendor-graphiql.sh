#!/usr/bin/env bash
# Re-downloads the GraphiQL assets that the binary embeds
# (crates/basalt-platform/assets/graphiql/) from the npm registry with
# `npm pack`, refuses any tarball whose integrity differs from the pinned one,
# and copies out only the minified builds and licences (no source maps).
#
# Usage: bash scripts/vendor-graphiql.sh
# To upgrade: change a version below, run once with its INTEGRITY set to
# `new` to print the registry's hash, check it, pin it here, run again, and
# update VENDORED.md (the script prints its table) and the file names in
# crates/basalt-platform/src/graphql/graphiql.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=crates/basalt-platform/assets/graphiql

# package@version, npm integrity, then "file-in-package=>vendored-name" pairs
# (react-dom's LICENSE is react's, word for word).
PACKAGES=(
    "react@18.3.1"
    "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
    "umd/react.production.min.js=>react.production.min.js LICENSE=>LICENSE.react"

    "react-dom@18.3.1"
    "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
    "umd/react-dom.production.min.js=>react-dom.production.min.js"

    "graphiql@3.9.0"
    "sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA=="
    "graphiql.min.js=>graphiql.min.js graphiql.min.css=>graphiql.min.css LICENSE=>LICENSE.graphiql"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

table=""
for ((i = 0; i < ${#PACKAGES[@]}; i += 3)); do
    spec=${PACKAGES[i]} pinned=${PACKAGES[i + 1]} files=${PACKAGES[i + 2]}
    (cd "$work" && npm pack --silent --json "$spec" >"pack.json")
    read -r tarball integrity < <(node -e '
        const [p] = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        console.log(p.filename, p.integrity);' "$work/pack.json")
    if [[ "$integrity" != "$pinned" ]]; then
        echo "$spec: integrity $integrity, pinned $pinned" >&2
        [[ "$pinned" == new ]] || exit 1
        continue
    fi
    # npm pack checked the download against the registry's integrity; check
    # the file on disk against the pinned one too, independently of npm.
    actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
    if [[ "$actual" != "$pinned" ]]; then
        echo "$spec: tarball hashes to $actual, pinned $pinned" >&2
        exit 1
    fi
    mkdir -p "$work/${spec%@*}"
    tar -xzf "$work/$tarball" -C "$work/${spec%@*}"
    for pair in $files; do
        from=${pair%%=>*} to=${pair##*=>}
        cp "$work/${spec%@*}/package/$from" "$DEST/$to"
        sum=$(sha256sum "$DEST/$to" | cut -d' ' -f1)
        table+="| \`$spec\` | \`$from\` | \`$to\` | \`$sum\` |"$'\n'
    done
done

echo "Files vendored into $DEST (package, file in the package, name here, sha256):"
printf '%s' "$table"
