//! Argon2, compiled here at full optimisation.
//!
//! Release builds are optimised for size (the workspace's `Cargo.toml`), and
//! Argon2's inner loops are generic: they are compiled in whichever crate
//! calls `hash_password_into_with_memory`, at that crate's level. Compiled at
//! `opt-level = "s"`, a sign-in took 19.9 ms instead of 14.5. This crate is
//! that call site, and the only one; the release profile gives it
//! `opt-level = 3`.

pub use argon2::{Argon2, Block, Error};

/// Argon2 of `password` and `salt` into `out`, working in `blocks` (as
/// many as the hasher's parameters need).
#[inline(never)]
pub fn hash_into(
    hasher: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    blocks: &mut [Block],
) -> Result<(), Error> {
    hasher.hash_password_into_with_memory(password, salt, out, blocks)
}
