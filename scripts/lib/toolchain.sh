# shellcheck shell=bash
# The Rust toolchain pinned in rust-toolchain.toml. When it is not installed
# under its own name but the installed `stable` is that very version, use
# `stable`: the same compiler, and no download (some CI machines cannot reach
# rustup's servers). Otherwise install it, or stop with a clear message
# instead of a failed download deep inside cargo.
use_pinned_toolchain() {
    local root=$1 pinned installed
    command -v rustup >/dev/null 2>&1 || return 0
    pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$root/rust-toolchain.toml")
    if rustup toolchain list 2>/dev/null | grep -q "^$pinned-"; then
        return 0
    fi
    installed=$(RUSTUP_TOOLCHAIN=stable rustc --version 2>/dev/null | awk '{print $2}')
    if [ "$installed" = "$pinned" ]; then
        export RUSTUP_TOOLCHAIN=stable
        return 0
    fi
    if rustup toolchain install "$pinned" --profile minimal --component rustfmt,clippy; then
        return 0
    fi
    echo "rust-toolchain.toml pins Rust $pinned; rustup could not install it and stable is ${installed:-missing}." >&2
    return 1
}
