//! The `basalt` binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    release_large_blocks_at_once();
    basalt::cli::main()
}

/// Makes glibc's malloc serve every block of 4 MiB or more with its own
/// mapping, unmapped as soon as it is freed.
///
/// By default that threshold starts at 128 KiB and rises to the size of the
/// largest mapped block freed so far; after one Argon2 hash (19 MiB of
/// working memory) such blocks come from per-thread arenas and stay resident
/// after they are freed. A server that had signed a few dozen users in idled
/// at about 300 MB. The hashing threads now keep their working memory while
/// busy and free it when idle (`basalt_identity::passwords`), and this makes
/// the freeing real. Not lower: requests allocate buffers of 128 KiB, which
/// a mapping per request would make four times slower (measured on
/// `GET /api/tags`: 125 µs of CPU per request at a 128 KiB threshold, against
/// 29 µs).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_large_blocks_at_once() {
    // SAFETY: mallopt only sets a malloc parameter; it is called before any
    // other thread exists, and a failure (0) leaves glibc's default in place.
    let applied = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024) };
    debug_assert_eq!(applied, 1, "mallopt(M_MMAP_THRESHOLD) refused");
    // A fixed mmap threshold also fixes the trim threshold at 128 KiB, which
    // would shrink and regrow the heap around every request's buffers.
    // SAFETY: as above.
    let applied = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 8 * 1024 * 1024) };
    debug_assert_eq!(applied, 1, "mallopt(M_TRIM_THRESHOLD) refused");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_large_blocks_at_once() {}
