//! Argon2 working memory, kept by each hashing thread between hashes.
//!
//! An Argon2id hash works in `argon2_memory_kib` of memory (19 MiB by
//! default). Allocated per hash, that memory costs page faults on every hash,
//! and glibc's malloc keeps the freed blocks resident in per-thread arenas
//! (measured: 299 MB of RSS after 24 hashes). Instead each hashing thread
//! reuses one buffer while it is busy, and its pool frees the buffer once the
//! thread has been idle for a while ([`super::pool`]), so that an idle
//! server gives the memory back.
//!
//! On Linux the buffer asks for transparent huge pages (`MADV_HUGEPAGE`).
//! Argon2 reads one block at a random place in its memory for every block it
//! writes; over 19 MiB in 4 KiB pages most of those reads also miss the
//! TLB. Backed by 2 MiB pages a hash took 1 to 6 % less time, one at a time
//! and two at once alike, the more the busier the host's caches
//! (bench/notes/identity-signin.md, session 7). Where the kernel has no huge
//! page to give, it falls back to small pages.

use std::cell::RefCell;

use argon2::Block;

thread_local! {
    static BUFFER: RefCell<Buffer> = const { RefCell::new(Buffer::EMPTY) };
}

/// Runs `work` with `count` blocks of this thread's buffer, grown to fit.
/// The blocks hold whatever the last hash left there: Argon2 writes every
/// block of its first pass before reading it.
pub(super) fn with_blocks<R>(count: usize, work: impl FnOnce(&mut [Block]) -> R) -> R {
    BUFFER.with_borrow_mut(|buffer| {
        if buffer.len < count {
            // Free the old buffer before allocating the new one.
            *buffer = Buffer::EMPTY;
            *buffer = Buffer::new(count);
        }
        work(buffer.blocks(count))
    })
}

/// Wipes and frees this thread's buffer (it holds password-derived state).
pub(super) fn release() {
    BUFFER.with_borrow_mut(|buffer| {
        buffer.memory.fill(Block::default());
        *buffer = Buffer::EMPTY;
    });
}

/// Blocks this thread holds now.
#[cfg(test)]
pub(super) fn held() -> usize {
    BUFFER.with_borrow(|buffer| buffer.len)
}

/// A huge page: 2 MiB, x86-64's and (with 4 KiB base pages) arm64's.
const HUGE_PAGE_BYTES: usize = 2 << 20;
const HUGE_PAGE_BLOCKS: usize = HUGE_PAGE_BYTES / Block::SIZE;

/// `len` usable blocks, starting `start` blocks into `memory`, at a huge
/// page's boundary.
struct Buffer {
    memory: Vec<Block>,
    start: usize,
    len: usize,
}

impl Buffer {
    const EMPTY: Buffer = Buffer {
        memory: Vec::new(),
        start: 0,
        len: 0,
    };

    fn new(len: usize) -> Buffer {
        // Room to move the start to a boundary, and for the last huge page.
        let capacity = len.next_multiple_of(HUGE_PAGE_BLOCKS) + 2 * HUGE_PAGE_BLOCKS;
        let mut memory = Vec::with_capacity(capacity);
        // Before the first write: the kernel picks the page size when it
        // first maps a page in.
        huge_pages::advise(memory.spare_capacity_mut());
        // A `Block` is only 64-byte aligned, so the first whole block at or
        // after the boundary may start up to 960 bytes past it.
        let address = memory.as_ptr() as usize;
        let boundary = address.next_multiple_of(HUGE_PAGE_BYTES);
        let start = (boundary - address).div_ceil(Block::SIZE);
        // Capacity beyond `start + len` is never touched, so never mapped in;
        // the up to 2 MiB before `start` is, in small pages.
        memory.resize(start + len, Block::default());
        Buffer { memory, start, len }
    }

    fn blocks(&mut self, count: usize) -> &mut [Block] {
        &mut self.memory[self.start..self.start + count]
    }
}

#[cfg(target_os = "linux")]
mod huge_pages {
    use std::mem::MaybeUninit;

    use argon2::Block;
    use rustix::mm::Advice;

    use super::HUGE_PAGE_BYTES;

    /// Asks the kernel to back the whole huge pages inside `region` with
    /// transparent huge pages. Best effort: with THP off (`never`) the advice
    /// is ignored, on a kernel built without THP it fails, and small pages do
    /// either way.
    #[allow(unsafe_code)]
    pub(super) fn advise(region: &mut [MaybeUninit<Block>]) {
        let from = region.as_mut_ptr() as usize;
        let first = from.next_multiple_of(HUGE_PAGE_BYTES);
        let end = (from + size_of_val(region)) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
        if end <= first {
            return;
        }
        let address = region.as_mut_ptr().wrapping_byte_add(first - from).cast();
        // SAFETY: `MADV_HUGEPAGE` changes how the kernel backs these pages,
        // never what they hold, and `first..end` lies inside `region`, which
        // this buffer owns (borrowed mutably, so nothing else uses it).
        let advised = unsafe { rustix::mm::madvise(address, end - first, Advice::LinuxHugepage) };
        if let Err(e) = advised {
            tracing::debug!(error = %e, "no transparent huge pages for Argon2's memory");
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod huge_pages {
    pub(super) fn advise(_: &mut [std::mem::MaybeUninit<argon2::Block>]) {}
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

    #[test]
    fn the_blocks_start_at_a_huge_page_boundary() {
        for count in [1, 19_456, HUGE_PAGE_BLOCKS, HUGE_PAGE_BLOCKS + 1] {
            with_blocks(count, |blocks| {
                assert_eq!(blocks.len(), count);
                let past_boundary = blocks.as_ptr() as usize % HUGE_PAGE_BYTES;
                assert!(
                    past_boundary < Block::SIZE,
                    "{count} blocks: {past_boundary} bytes past"
                );
            });
            release();
        }
    }

    /// Needs the kernel's transparent huge pages at `madvise` or `always`
    /// (Debian's and Ubuntu's default is `madvise`), and free memory to
    /// build a 2 MiB page from; says so and passes where THP is off.
    #[cfg(target_os = "linux")]
    #[test]
    fn argon2s_memory_is_backed_by_huge_pages() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if thp.is_empty() || thp.contains("[never]") {
            eprintln!("skipped: transparent huge pages are off here ({thp:?})");
            return;
        }
        let blocks = 19_456; // the OWASP default, 19 MiB
        let address = with_blocks(blocks, |b| b.as_ptr() as usize);
        let huge_kib = anon_huge_kib_of_mapping_at(address);
        release();
        let expected = blocks * Block::SIZE / 1024 / 2048 * 2048; // whole 2 MiB pages
        assert!(
            huge_kib >= expected,
            "{huge_kib} KiB of huge pages under the 19 MiB buffer, expected at least {expected}"
        );
    }

    /// `AnonHugePages` of the mapping holding `address`, from /proc/self/smaps.
    #[cfg(target_os = "linux")]
    fn anon_huge_kib_of_mapping_at(address: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_once(' ').map_or("", |(first, _)| first);
            if let Some((from, to)) = range.split_once('-')
                && let (Ok(from), Ok(to)) = (
                    usize::from_str_radix(from, 16),
                    usize::from_str_radix(to, 16),
                )
            {
                inside = (from..to).contains(&address);
                continue;
            }
            if inside && let Some(kib) = line.strip_prefix("AnonHugePages:") {
                return kib
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .expect("a size");
            }
        }
        panic!("no mapping holds {address:#x}");
    }
}
