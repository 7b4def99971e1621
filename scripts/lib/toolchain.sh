# shellcheck shell=bash
# The Rust toolchain pinned in rust-toolchain.toml. Where rustup cannot
# download it (an offline CI machine) but the installed `stable` is that very
# version, use `stable`: same compiler, no download. Any other mismatch stops
# with a clear message instead of a failed download deep inside cargo.
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
    echo "rust-toolchain.toml pins Rust $pinned; rustup has neither it nor a stable of that version (stable: ${installed:-none})." >&2
    echo "Install it with: rustup toolchain install $pinned --component rustfmt,clippy" >&2
    return 1
}
