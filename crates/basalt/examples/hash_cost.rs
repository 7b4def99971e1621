//! Measures what one password check costs on this machine, the way the server
//! pays for it: `Passwords::verify` (blocking pool, semaphore, PHC parsing,
//! one Argon2id computation) against a hash made with the configured
//! parameters (the OWASP defaults unless overridden).
//!
//! Used by `bench/run.sh` to compute the sign-in ceiling
//! `cores / seconds-per-hash`. Not a test: it asserts nothing.
//!
//! It is an example of the `basalt` package, not of `basalt-identity`,
//! because the release profile's fat LTO optimises everything at the level
//! of the crate that is linked: built as an identity example, Argon2 ran at
//! `opt-level = "s"` (23 ms per hash instead of the server's 14 ms), and the
//! ceiling computed from it was far too low.
//!
//! ```text
//! cargo run --release -p basalt --example hash_cost -- [ITERATIONS] [THREADS] [PER_THREAD] [MEMORY_KIB] [PASSES]
//! ```
//!
//! - `ITERATIONS` (default 30, at most 1000): sequential verifications timed
//!   one by one (one permit, so never two at once); prints their median, and
//!   their mean (total time / count), which is what a throughput ceiling
//!   needs: one core hashing back to back completes `1 / mean` per second,
//!   the slow ones included.
//! - `THREADS` (default 0 = skip): then runs `THREADS` verifications at a
//!   time, `PER_THREAD` (default 100, at most 1000) each, and prints the
//!   aggregate rate, which shows how far parallel hashing falls short of
//!   `THREADS ×` the sequential rate (shared caches, memory bandwidth, and
//!   whatever else runs on the machine).
//! - `MEMORY_KIB`, `PASSES` (default 0 = the server's defaults): other
//!   Argon2id costs, for runs of the server configured the same way.
//!
//! Output is `key=value` lines for scripts.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use basalt_identity::passwords::{PasswordParams, Passwords};

const PASSWORD: &str = "correct horse battery staple";
const MAX_ITERATIONS: usize = 1000;
const MAX_THREADS: usize = 64;

fn arg(position: usize, default: usize) -> anyhow::Result<usize> {
    match std::env::args().nth(position) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .with_context(|| format!("argument {position} must be a count, got {text:?}")),
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let iterations = arg(1, 30)?;
    let threads = arg(2, 0)?;
    let per_thread = arg(3, 100)?;
    let memory_kib = arg(4, 0)?;
    let passes = arg(5, 0)?;
    ensure!(
        (1..=MAX_ITERATIONS).contains(&iterations),
        "ITERATIONS must be 1..={MAX_ITERATIONS}"
    );
    ensure!(threads <= MAX_THREADS, "THREADS must be 0..={MAX_THREADS}");
    ensure!(
        (1..=MAX_ITERATIONS).contains(&per_thread),
        "PER_THREAD must be 1..={MAX_ITERATIONS}"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let mut params = PasswordParams::default();
        if memory_kib > 0 {
            params.argon2_memory_kib = u32::try_from(memory_kib)?;
        }
        if passes > 0 {
            params.argon2_iterations = u32::try_from(passes)?;
        }
        let sequential = Passwords::new(PasswordParams {
            max_concurrent_hashes: 1,
            ..params.clone()
        })?;
        let hash = sequential.hash(PASSWORD).await?;
        println!(
            "params=argon2id m={} KiB t={} p={}",
            params.argon2_memory_kib, params.argon2_iterations, params.argon2_parallelism
        );
        println!(
            "hash_prefix={}",
            hash.split('$').take(4).collect::<Vec<_>>().join("$")
        );

        // Warm-up: page in the allocator's arenas and the code.
        for _ in 0..2 {
            let v = sequential.verify(PASSWORD, &hash).await?;
            ensure!(v.matches && !v.needs_rehash, "warm-up verification failed");
        }

        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let started = Instant::now();
            let v = sequential.verify(PASSWORD, &hash).await?;
            samples.push(started.elapsed());
            ensure!(v.matches, "verification failed");
        }
        let total: Duration = samples.iter().sum();
        let min = samples.iter().min().copied().unwrap_or_default();
        let max = samples.iter().max().copied().unwrap_or_default();
        let med = median(&mut samples);
        println!("iterations={iterations}");
        println!("verify_ms_median={:.3}", ms(med));
        println!("verify_ms_mean={:.3}", ms(total) / iterations as f64);
        println!("verify_ms_min={:.3}", ms(min));
        println!("verify_ms_max={:.3}", ms(max));

        if threads > 0 {
            let parallel = Passwords::new(PasswordParams {
                max_concurrent_hashes: threads,
                ..params
            })?;
            // Warm-up: every blocking thread gets its memory paged in.
            let warm: Vec<_> = (0..threads)
                .map(|_| {
                    let parallel = parallel.clone();
                    let hash = hash.clone();
                    tokio::spawn(async move { parallel.verify(PASSWORD, &hash).await })
                })
                .collect();
            for task in warm {
                task.await.context("warm-up task")??;
            }
            let total = per_thread * threads;
            let started = Instant::now();
            let mut tasks = Vec::with_capacity(threads);
            for _ in 0..threads {
                let parallel = parallel.clone();
                let hash = hash.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..per_thread {
                        let v = parallel.verify(PASSWORD, &hash).await?;
                        ensure!(v.matches, "verification failed");
                    }
                    anyhow::Ok(())
                }));
            }
            for task in tasks {
                task.await.context("verifier task")??;
            }
            let elapsed = started.elapsed().as_secs_f64();
            println!("parallel_threads={threads}");
            println!("parallel_verifies={total}");
            println!("parallel_verifies_per_sec={:.3}", total as f64 / elapsed);
        }
        anyhow::Ok(())
    })
}
