//! Argon2 working memory, kept by each hashing thread between hashes.
//!
//! An Argon2id hash works in `argon2_memory_kib` of memory (19 MiB by
//! default). Allocated per hash, that memory costs page faults on every hash,
//! and glibc's malloc keeps the freed blocks resident in per-thread arenas
//! (measured: 299 MB of RSS after 24 hashes). Instead each hashing thread
//! reuses one buffer while it is busy, and its pool frees the buffer once the
//! thread has been idle for a while ([`super::pool`]), so that an idle
//! server gives the memory back.

use std::cell::RefCell;

use argon2::Block;

thread_local! {
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` with `count` blocks of this thread's buffer, grown to fit.
/// The blocks hold whatever the last hash left there: Argon2 writes every
/// block of its first pass before reading it.
pub(super) fn with_blocks<R>(count: usize, work: impl FnOnce(&mut [Block]) -> R) -> R {
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() < count {
            // Free the old buffer before allocating the new one.
            *blocks = Vec::new();
            blocks.resize(count, Block::default());
        }
        work(&mut blocks[..count])
    })
}

/// Wipes and frees this thread's buffer (it holds password-derived state).
pub(super) fn release() {
    BLOCKS.with_borrow_mut(|blocks| {
        blocks.fill(Block::default());
        *blocks = Vec::new();
    });
}

/// Blocks this thread holds now.
#[cfg(test)]
pub(super) fn held() -> usize {
    BLOCKS.with_borrow(Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_grows_is_reused_and_is_released() {
        assert_eq!(held(), 0);
        with_blocks(8, |b| assert_eq!(b.len(), 8));
        assert_eq!(held(), 8);
        with_blocks(4, |b| {
            assert_eq!(b.len(), 4, "a prefix of the larger buffer")
        });
        assert_eq!(held(), 8);
        with_blocks(16, |b| assert_eq!(b.len(), 16));
        assert_eq!(held(), 16);
        release();
        assert_eq!(held(), 0);
    }
}
