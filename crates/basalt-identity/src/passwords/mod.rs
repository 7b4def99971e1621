//! Password hashing and the password policy.
//!
//! New hashes are Argon2id in PHC string format, with the OWASP parameters by
//! default. Verification also accepts hashes imported from other systems
//! (other Argon2 variants or parameters, bcrypt `$2a$`/`$2b$`/`$2y$`, scrypt
//! PHC) and reports them as needing a rehash, so that the caller can upgrade
//! them on the next successful login.
//!
//! Hashing is deliberately slow and memory-hungry, so it runs on a few
//! dedicated threads at low OS priority ([`pool`]) behind a semaphore: a burst
//! of logins queues for permits instead of stalling the async runtime, slowing
//! other requests down or multiplying memory use (each hash holds
//! `argon2_memory_kib` for its duration).
//!
//! The policy ([`check_policy`]) follows NIST SP 800-63B: a length range, a
//! list of common/breached passwords, no match with the account's own
//! identifiers, and no composition rules.

mod affinity;
mod policy;
mod pool;
mod scratch;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, anyhow};
use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, PasswordHash, Version};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

pub use policy::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PolicyViolation, check_policy};
pub use pool::HashPriority;

/// Tuning of password hashing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordParams {
    /// Argon2id memory cost in KiB (OWASP: 19456, i.e. 19 MiB).
    pub argon2_memory_kib: u32,
    /// Argon2id passes over the memory (OWASP: 2).
    pub argon2_iterations: u32,
    /// Argon2id lanes (OWASP: 1).
    pub argon2_parallelism: u32,
    /// Hashes computed at once; further ones wait. 0 means one per CPU.
    pub max_concurrent_hashes: usize,
    /// OS scheduling priority of the hashing threads (`idle`, `low` or
    /// `normal`): below the request threads by default, so that a sign-in
    /// storm does not slow other requests down.
    pub hash_priority: HashPriority,
}

impl Default for PasswordParams {
    /// The OWASP Password Storage Cheat Sheet's Argon2id recommendation.
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 0,
            hash_priority: HashPriority::default(),
        }
    }
}

/// Upper bounds on the work a single hash may demand, for our own parameters
/// and for stored hashes alike. A stored hash comes from our database, but
/// imported or corrupted rows must not be able to make one login allocate
/// gigabytes or run for minutes.
mod limits {
    /// Argon2 memory, KiB (1 GiB).
    pub const ARGON2_MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// Argon2 passes.
    pub const ARGON2_MAX_ITERATIONS: u32 = 64;
    /// Argon2 lanes.
    pub const ARGON2_MAX_PARALLELISM: u32 = 64;
    /// bcrypt cost (2^16 rounds, several seconds).
    pub const BCRYPT_MAX_COST: u32 = 16;
    /// scrypt memory, bytes (128 · r · N).
    pub const SCRYPT_MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
    /// scrypt parallelism (runs sequentially here).
    pub const SCRYPT_MAX_P: u32 = 16;
    /// Concurrent hashes.
    pub const MAX_CONCURRENT_HASHES: usize = 1024;
}

/// Below this memory × iterations product Argon2id is weaker than every
/// configuration in OWASP's table (whose weakest is 7 MiB × 5 passes).
const OWASP_MIN_MEMORY_TIMES_ITERATIONS: u64 = 7 * 1024 * 5;

/// Salt of [`Passwords::verify_dummy`]. Its output is thrown away, so a
/// constant salt costs nothing in security and skips the RNG.
const DUMMY_SALT: &[u8; 16] = b"basalt-dummy-slt";

/// The outcome of [`Passwords::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password matches the stored hash.
    pub matches: bool,
    /// The password matched but the hash is not Argon2id with the current
    /// parameters: store [`Passwords::hash`] of the password in its place.
    /// Always `false` when the password did not match (there is nothing to
    /// rehash it with).
    pub needs_rehash: bool,
}

impl Verification {
    const NO_MATCH: Self = Self {
        matches: false,
        needs_rehash: false,
    };

    fn matched(needs_rehash: bool) -> Self {
        Self {
            matches: true,
            needs_rehash,
        }
    }
}

/// Hashes and verifies passwords. Cheap to clone; clones share the
/// concurrency limit.
#[derive(Clone)]
pub struct Passwords {
    inner: Arc<Inner>,
}

struct Inner {
    params: argon2::Params,
    permits: Arc<Semaphore>,
    threads: pool::HashPool,
    max_concurrent: usize,
    /// Hashes running right now, and the most ever seen at once: cheap
    /// atomics that let tests prove the semaphore bounds the blocking work.
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords")
            .field("argon2_memory_kib", &self.inner.params.m_cost())
            .field("argon2_iterations", &self.inner.params.t_cost())
            .field("argon2_parallelism", &self.inner.params.p_cost())
            .field("max_concurrent_hashes", &self.inner.max_concurrent)
            .finish()
    }
}

/// Which algorithm produced a stored hash, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Argon2,
    Bcrypt,
    Scrypt,
    Unknown,
}

impl Scheme {
    fn of(stored_hash: &str) -> Self {
        const ARGON2: [&str; 3] = ["$argon2id$", "$argon2i$", "$argon2d$"];
        // `$2x$` (hashes from crypt_blowfish's buggy era) is left out on
        // purpose: the bcrypt crate would treat it as `$2b$`, which is wrong
        // for the 8-bit passwords the bug affected.
        const BCRYPT: [&str; 3] = ["$2a$", "$2b$", "$2y$"];
        if ARGON2.iter().any(|p| stored_hash.starts_with(p)) {
            Self::Argon2
        } else if BCRYPT.iter().any(|p| stored_hash.starts_with(p)) {
            Self::Bcrypt
        } else if stored_hash.starts_with("$scrypt$") {
            Self::Scrypt
        } else {
            Self::Unknown
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Argon2 => "argon2",
            Self::Bcrypt => "bcrypt",
            Self::Scrypt => "scrypt",
            Self::Unknown => "unknown",
        }
    }
}

impl Passwords {
    /// Checks the parameters and sets up the concurrency limit.
    pub fn new(params: PasswordParams) -> anyhow::Result<Self> {
        let PasswordParams {
            argon2_memory_kib: memory,
            argon2_iterations: iterations,
            argon2_parallelism: parallelism,
            max_concurrent_hashes,
            hash_priority,
        } = params;
        anyhow::ensure!(
            memory <= limits::ARGON2_MAX_MEMORY_KIB,
            "argon2_memory_kib must be at most {} (1 GiB), got {memory}",
            limits::ARGON2_MAX_MEMORY_KIB
        );
        anyhow::ensure!(
            (1..=limits::ARGON2_MAX_ITERATIONS).contains(&iterations),
            "argon2_iterations must be between 1 and {}, got {iterations}",
            limits::ARGON2_MAX_ITERATIONS
        );
        anyhow::ensure!(
            (1..=limits::ARGON2_MAX_PARALLELISM).contains(&parallelism),
            "argon2_parallelism must be between 1 and {}, got {parallelism}",
            limits::ARGON2_MAX_PARALLELISM
        );
        anyhow::ensure!(
            max_concurrent_hashes <= limits::MAX_CONCURRENT_HASHES,
            "max_concurrent_hashes must be at most {}, got {max_concurrent_hashes}",
            limits::MAX_CONCURRENT_HASHES
        );
        let argon2_params =
            argon2::Params::new(memory, iterations, parallelism, None).map_err(|e| {
                anyhow!(
                    "invalid Argon2 parameters (memory {memory} KiB, {iterations} iterations, \
                     parallelism {parallelism}): {e}; memory must be at least 8 KiB per lane"
                )
            })?;
        if u64::from(memory) * u64::from(iterations) < OWASP_MIN_MEMORY_TIMES_ITERATIONS {
            tracing::warn!(
                argon2_memory_kib = memory,
                argon2_iterations = iterations,
                "password hashing parameters are weaker than OWASP's recommendation \
                 (19456 KiB, 2 iterations); acceptable for tests only"
            );
        }
        let max_concurrent = match max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                params: argon2_params,
                permits: Arc::new(Semaphore::new(max_concurrent)),
                threads: pool::HashPool::start(max_concurrent, hash_priority)
                    .context("could not start the password hashing threads")?,
                max_concurrent,
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }),
        })
    }

    /// Hashes a password with Argon2id and the current parameters, with a
    /// fresh random salt; returns the PHC string (`$argon2id$v=19$m=…`).
    ///
    /// The policy is not checked here: call [`check_policy`] on new passwords.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
        let params = self.inner.params.clone();
        self.run(move || hash_argon2id(password.as_bytes(), &params))
            .await?
    }

    /// Checks a password against a stored hash of any supported scheme.
    ///
    /// A hash that cannot be parsed, or that demands more work than the
    /// built-in limits allow, does not match (and is logged, without its
    /// value); it still costs as much as a real verification, so that a
    /// broken account cannot be told apart by timing. `Err` only means the
    /// hashing machinery failed (e.g. the blocking task panicked).
    pub async fn verify(&self, password: &str, stored_hash: &str) -> anyhow::Result<Verification> {
        let password = password.to_owned();
        let stored_hash = stored_hash.to_owned();
        let current = self.inner.params.clone();
        self.run(move || {
            verify_blocking(password.as_bytes(), &stored_hash, &current).unwrap_or_else(
                |(scheme, reason)| {
                    tracing::warn!(
                        scheme = scheme.name(),
                        reason = %reason,
                        "stored password hash is unusable; treating it as not matching"
                    );
                    dummy_work(password.as_bytes(), &current);
                    Verification::NO_MATCH
                },
            )
        })
        .await
    }

    /// Does the work of one verification against a current Argon2id hash and
    /// throws the result away. Call it when the account does not exist, so
    /// that a login attempt for an unknown account takes as long as one for a
    /// known account (and queues for the same permits).
    pub async fn verify_dummy(&self, password: &str) {
        let password = password.to_owned();
        let current = self.inner.params.clone();
        if let Err(e) = self
            .run(move || dummy_work(password.as_bytes(), &current))
            .await
        {
            tracing::warn!(error = %e, "dummy password verification failed");
        }
    }

    /// Runs CPU-heavy work on the hashing threads once a permit is free.
    ///
    /// The permit moves into the job: if the caller's future is dropped (a
    /// client disconnects mid-login), the already-started hash keeps its
    /// permit until it really finishes, so the bound holds. Callers still
    /// waiting for a permit when they go away cost no hashing at all.
    async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .context("the password hashing limiter is closed")?;
        let inner = Arc::clone(&self.inner);
        let counters = Arc::clone(&inner);
        inner
            .threads
            .run(move || {
                let _permit = permit;
                let now_running = counters.running.fetch_add(1, Ordering::SeqCst) + 1;
                counters.peak.fetch_max(now_running, Ordering::SeqCst);
                let result = work();
                counters.running.fetch_sub(1, Ordering::SeqCst);
                result
            })
            .await
            .context("password hashing task failed")
    }

    /// The most hashes that ever ran at the same time.
    #[cfg(test)]
    fn peak_concurrency(&self) -> usize {
        self.inner.peak.load(Ordering::SeqCst)
    }
}

/// Why a stored hash could not be used: its scheme and a reason safe to log.
type Unusable = (Scheme, String);

fn verify_blocking(
    password: &[u8],
    stored_hash: &str,
    current: &argon2::Params,
) -> Result<Verification, Unusable> {
    match Scheme::of(stored_hash) {
        Scheme::Argon2 => verify_argon2(password, stored_hash, current),
        Scheme::Bcrypt => verify_bcrypt(password, stored_hash),
        Scheme::Scrypt => verify_scrypt(password, stored_hash),
        Scheme::Unknown => Err((Scheme::Unknown, "unrecognised hash format".to_owned())),
    }
}

fn verify_argon2(
    password: &[u8],
    stored_hash: &str,
    current: &argon2::Params,
) -> Result<Verification, Unusable> {
    let fail = |e: &dyn fmt::Display| (Scheme::Argon2, e.to_string());
    let parsed = PasswordHash::new(stored_hash).map_err(|e| fail(&e))?;
    let params = argon2::Params::try_from(&parsed).map_err(|e| fail(&e))?;
    if params.m_cost() > limits::ARGON2_MAX_MEMORY_KIB
        || params.t_cost() > limits::ARGON2_MAX_ITERATIONS
        || params.p_cost() > limits::ARGON2_MAX_PARALLELISM
    {
        return Err(fail(&"parameters exceed the verification limits"));
    }
    // Verification re-hashes with the algorithm, version and parameters
    // recorded in the PHC string, in this thread's reused working memory.
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| fail(&e))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| fail(&e))?,
        None => Version::default(),
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(fail(&"no salt or no hash"));
    };
    let mut computed = vec![0u8; expected.len()];
    let hasher = Argon2::new(algorithm, version, params.clone());
    scratch::with_blocks(params.block_count(), |blocks| {
        basalt_argon2::hash_into(&hasher, password, salt, &mut computed, blocks)
    })
    .map_err(|e| fail(&e))?;
    // `Output`'s equality is constant-time.
    match Output::new(&computed).map(|c| c == *expected) {
        Ok(true) => {
            let current_version = u32::from(Version::V0x13);
            let up_to_date = parsed.algorithm == argon2::ARGON2ID_IDENT
                && parsed.version == Some(current_version)
                && params.m_cost() == current.m_cost()
                && params.t_cost() == current.t_cost()
                && params.p_cost() == current.p_cost()
                && params.output_len() == Some(argon2::Params::DEFAULT_OUTPUT_LEN)
                && parsed
                    .salt
                    .is_some_and(|s| s.len() >= argon2::RECOMMENDED_SALT_LEN);
            Ok(Verification::matched(!up_to_date))
        }
        Ok(false) => Ok(Verification::NO_MATCH),
        Err(e) => Err(fail(&e)),
    }
}

fn verify_bcrypt(password: &[u8], stored_hash: &str) -> Result<Verification, Unusable> {
    let fail = |e: &dyn fmt::Display| (Scheme::Bcrypt, e.to_string());
    // `$2b$12$…`: the cost is the two digits after the version.
    let cost: u32 = stored_hash
        .get(4..6)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| fail(&"malformed cost"))?;
    if cost > limits::BCRYPT_MAX_COST {
        return Err(fail(&"cost exceeds the verification limit"));
    }
    match bcrypt::verify(password, stored_hash) {
        Ok(true) => Ok(Verification::matched(true)),
        Ok(false) => Ok(Verification::NO_MATCH),
        Err(e) => Err(fail(&e)),
    }
}

fn verify_scrypt(password: &[u8], stored_hash: &str) -> Result<Verification, Unusable> {
    let fail = |e: &dyn fmt::Display| (Scheme::Scrypt, e.to_string());
    let parsed = PasswordHash::new(stored_hash).map_err(|e| fail(&e))?;
    let params = scrypt::Params::try_from(&parsed).map_err(|e| fail(&e))?;
    let memory = 128u64
        .saturating_mul(u64::from(params.r()))
        .saturating_mul(params.n());
    if memory > limits::SCRYPT_MAX_MEMORY_BYTES || params.p() > limits::SCRYPT_MAX_P {
        return Err(fail(&"parameters exceed the verification limits"));
    }
    use scrypt::password_hash::PasswordVerifier as _;
    match scrypt::Scrypt::new().verify_password(password, &parsed) {
        Ok(()) => Ok(Verification::matched(true)),
        Err(scrypt::password_hash::Error::PasswordInvalid) => Ok(Verification::NO_MATCH),
        Err(e) => Err(fail(&e)),
    }
}

/// A new Argon2id hash (version 0x13, `params`, a fresh 16-byte salt) as a
/// PHC string, computed in this thread's reused working memory.
fn hash_argon2id(password: &[u8], params: &argon2::Params) -> anyhow::Result<String> {
    let fail = |e: &dyn fmt::Display| anyhow!("password hashing failed: {e}");
    let mut salt = [0u8; argon2::RECOMMENDED_SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| fail(&e))?;
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    scratch::with_blocks(params.block_count(), |blocks| {
        basalt_argon2::hash_into(&hasher, password, &salt, &mut out, blocks)
    })
    .map_err(|e| fail(&e))?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| fail(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| fail(&e))?),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(hash.to_string())
}

/// One Argon2id computation with the current parameters, result discarded:
/// the cost of verifying a current hash.
fn dummy_work(password: &[u8], current: &argon2::Params) {
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, current.clone());
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    let done = scratch::with_blocks(current.block_count(), |blocks| {
        basalt_argon2::hash_into(&hasher, password, DUMMY_SALT, &mut out, blocks)
    });
    if let Err(e) = done {
        tracing::warn!(error = %e, "dummy password hashing failed");
    }
    std::hint::black_box(out);
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    /// The hashes made in reused memory are the argon2 crate's own: each
    /// side verifies the other's, and a wrong password matches neither.
    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crate_both_ways() {
        let passwords = fast();
        let params = passwords.inner.params.clone();
        let ours = passwords.hash("tr0ub4dor&3").await.expect("hashes");
        let crate_hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(
            crate_hasher
                .verify_password(b"tr0ub4dor&3", &parsed)
                .is_ok()
        );
        assert!(
            crate_hasher
                .verify_password(b"tr0ub4dor&4", &parsed)
                .is_err()
        );
        assert_eq!(
            parsed.salt.map(|s| s.len()),
            Some(argon2::RECOMMENDED_SALT_LEN)
        );
        let theirs = crate_hasher
            .hash_password(b"correct horse")
            .expect("hashes")
            .to_string();
        let verified = passwords
            .verify("correct horse", &theirs)
            .await
            .expect("runs");
        assert_eq!(verified, Verification::matched(false));
        let wrong = passwords
            .verify("correct horsf", &theirs)
            .await
            .expect("runs");
        assert_eq!(wrong, Verification::NO_MATCH);
    }

    /// Small parameters: fast tests, same code paths.
    fn fast_params() -> PasswordParams {
        PasswordParams {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_hashes: 2,
            hash_priority: HashPriority::default(),
        }
    }

    fn fast() -> Passwords {
        Passwords::new(fast_params()).expect("valid params")
    }

    #[tokio::test]
    async fn hash_then_verify_roundtrip() {
        let passwords = fast();
        let hash = passwords
            .hash("correct horse battery staple")
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        let verdict = passwords
            .verify("correct horse battery staple", &hash)
            .await
            .expect("verify");
        assert_eq!(
            verdict,
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        // Salts are random: the same password hashes differently each time.
        let again = passwords
            .hash("correct horse battery staple")
            .await
            .expect("hash");
        assert_ne!(hash, again);
    }

    #[tokio::test]
    async fn wrong_password_does_not_match() {
        let passwords = fast();
        let hash = passwords.hash("s3cret-Passw0rd").await.expect("hash");
        for wrong in ["s3cret-passw0rd", "s3cret-Passw0rd ", "", "x"] {
            let verdict = passwords.verify(wrong, &hash).await.expect("verify");
            assert_eq!(verdict, Verification::NO_MATCH, "{wrong:?}");
        }
    }

    #[tokio::test]
    async fn changed_params_flag_rehash() {
        let old = fast();
        let hash = old.hash("rotate-me-please").await.expect("hash");
        let stronger = Passwords::new(PasswordParams {
            argon2_memory_kib: 128,
            argon2_iterations: 2,
            ..fast_params()
        })
        .expect("valid params");
        let verdict = stronger
            .verify("rotate-me-please", &hash)
            .await
            .expect("verify");
        assert_eq!(verdict, Verification::matched(true));
        // A wrong password never asks for a rehash.
        let verdict = stronger.verify("nope", &hash).await.expect("verify");
        assert_eq!(verdict, Verification::NO_MATCH);
        // The rehash is current.
        let rehashed = stronger.hash("rotate-me-please").await.expect("hash");
        let verdict = stronger
            .verify("rotate-me-please", &rehashed)
            .await
            .expect("verify");
        assert_eq!(verdict, Verification::matched(false));
    }

    #[tokio::test]
    async fn other_argon2_variants_verify_and_need_rehash() {
        let passwords = fast();
        let params = argon2::Params::new(64, 1, 1, None).expect("params");
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let hash = Argon2::new(algorithm, Version::V0x13, params.clone())
                .hash_password(b"legacy-variant")
                .expect("hash")
                .to_string();
            let verdict = passwords
                .verify("legacy-variant", &hash)
                .await
                .expect("verify");
            assert_eq!(verdict, Verification::matched(true), "{hash}");
            let verdict = passwords.verify("other", &hash).await.expect("verify");
            assert_eq!(verdict, Verification::NO_MATCH, "{hash}");
        }
        // Argon2id, version 0x10.
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x10, params)
            .hash_password(b"old-version")
            .expect("hash")
            .to_string();
        let verdict = passwords
            .verify("old-version", &hash)
            .await
            .expect("verify");
        assert_eq!(verdict, Verification::matched(true), "{hash}");
    }

    /// Hashes made by another implementation (argon2-cffi 25.1, which wraps
    /// the reference C code), so that interoperability is tested, not just
    /// our own round trip.
    #[tokio::test]
    async fn foreign_argon2_hashes_verify() {
        let passwords = fast();
        for hash in [
            "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$\
             wRLS7mudUUQT+AYkMYeVIYbo8Zysq4DyCoI9VJ8RHSw",
            "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$\
             77X1OtRH9olx3G9mXHJJzKWqXxbc1sXyAxQFftkk7VM",
        ] {
            let verdict = passwords.verify("password", hash).await.expect("verify");
            assert_eq!(verdict, Verification::matched(true), "{hash}");
            let verdict = passwords.verify("Password", hash).await.expect("verify");
            assert_eq!(verdict, Verification::NO_MATCH, "{hash}");
        }
    }

    #[tokio::test]
    async fn bcrypt_hashes_verify_and_need_rehash() {
        let passwords = fast();
        // Made by bcrypt (the crate) at cost 4, in each accepted prefix.
        let made_here = bcrypt::hash("hunter2-but-longer", 4).expect("bcrypt");
        assert!(made_here.starts_with("$2b$04$"));
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let hash = format!("{prefix}{}", &made_here[4..]);
            let verdict = passwords
                .verify("hunter2-but-longer", &hash)
                .await
                .expect("verify");
            assert_eq!(verdict, Verification::matched(true), "{hash}");
            let verdict = passwords.verify("hunter3", &hash).await.expect("verify");
            assert_eq!(verdict, Verification::NO_MATCH, "{hash}");
        }
        // Made elsewhere: OpenBSD's classic test vector ("U*U", cost 5), and
        // two hashes of "correct horse" by Python's bcrypt 5.0.
        for (password, hash) in [
            (
                "U*U",
                "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            ),
            (
                "correct horse",
                "$2b$05$B9fR9aAY1pY5AEGNxeLkSeK.rh8cB0WsxzQ/SAAB.nT8yoD/Z4Ufy",
            ),
            (
                "correct horse",
                "$2a$05$ULVr.C4Cp6H15eC/5Hvv3ucowX1QxeV.Nq7/qGn/VkHRzsgJvifsG",
            ),
        ] {
            let verdict = passwords.verify(password, hash).await.expect("verify");
            assert_eq!(verdict, Verification::matched(true), "{hash}");
            let verdict = passwords
                .verify("correct horsE", hash)
                .await
                .expect("verify");
            assert_eq!(verdict, Verification::NO_MATCH, "{hash}");
        }
    }

    #[tokio::test]
    async fn scrypt_phc_hashes_verify_and_need_rehash() {
        let passwords = fast();
        // Made elsewhere: OpenSSL's scrypt (Python's hashlib.scrypt, N=2^10,
        // r=8, p=1, salt "NaClNaClNaClNaCl"), written as a PHC string.
        let foreign = "$scrypt$ln=10,r=8,p=1$TmFDbE5hQ2xOYUNsTmFDbA$\
                       eDQbZTxX0r0XJbZsxZ7JnhOntD+smecwbG7mgdnHKGQ";
        let verdict = passwords
            .verify("correct horse", foreign)
            .await
            .expect("verify");
        assert_eq!(verdict, Verification::matched(true));
        let verdict = passwords
            .verify("correct horsE", foreign)
            .await
            .expect("verify");
        assert_eq!(verdict, Verification::NO_MATCH);
        // One made by the scrypt crate with small parameters.
        let params = scrypt::Params::new(10, 8, 1).expect("scrypt params");
        let hash = scrypt::Scrypt::new_with_params(params)
            .hash_password(b"imported-from-elsewhere")
            .expect("scrypt")
            .to_string();
        assert!(hash.starts_with("$scrypt$"), "{hash}");
        let verdict = passwords
            .verify("imported-from-elsewhere", &hash)
            .await
            .expect("verify");
        assert_eq!(verdict, Verification::matched(true));
        let verdict = passwords.verify("imported", &hash).await.expect("verify");
        assert_eq!(verdict, Verification::NO_MATCH);
    }

    #[tokio::test]
    async fn unusable_hashes_do_not_match_and_do_not_panic() {
        let passwords = fast();
        let cases = [
            "",
            "plaintext",
            "$1$saltsalt$md5cryptmd5cryptmd5cr",
            "$argon2id$",
            "$argon2id$v=19$m=64,t=1,p=1$$",
            "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$not base64!",
            // Far beyond the limits: would allocate 4 GiB.
            "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$\
             CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            "$2b$",
            "$2b$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",
            "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWé",
            "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "$scrypt$ln=40,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$\
             nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "$scrypt$",
        ];
        for stored in cases {
            let verdict = passwords.verify("U*U", stored).await.expect("verify");
            assert_eq!(verdict, Verification::NO_MATCH, "{stored:?}");
        }
    }

    #[tokio::test]
    async fn dummy_verification_does_the_work() {
        let passwords = fast();
        passwords.verify_dummy("whatever").await;
        assert_eq!(passwords.peak_concurrency(), 1);
    }

    #[test]
    fn params_are_validated() {
        let bad = [
            PasswordParams {
                argon2_memory_kib: 4,
                ..fast_params()
            },
            PasswordParams {
                argon2_memory_kib: 8 * 1024 * 1024,
                ..fast_params()
            },
            PasswordParams {
                argon2_iterations: 0,
                ..fast_params()
            },
            PasswordParams {
                argon2_parallelism: 0,
                ..fast_params()
            },
            PasswordParams {
                argon2_memory_kib: 64,
                argon2_parallelism: 16,
                ..fast_params()
            },
            PasswordParams {
                max_concurrent_hashes: 1_000_000,
                ..fast_params()
            },
        ];
        for params in bad {
            assert!(Passwords::new(params.clone()).is_err(), "{params:?}");
        }
        let defaults = PasswordParams::default();
        assert_eq!(
            (
                defaults.argon2_memory_kib,
                defaults.argon2_iterations,
                defaults.argon2_parallelism,
                defaults.max_concurrent_hashes
            ),
            (19456, 2, 1, 0)
        );
        let passwords = Passwords::new(defaults).expect("defaults are valid");
        assert!(passwords.inner.max_concurrent >= 1);
    }

    #[test]
    fn params_deserialize_with_defaults_and_reject_unknown_keys() {
        let params: PasswordParams =
            serde_json::from_str(r#"{"argon2_iterations": 3}"#).expect("valid");
        assert_eq!(params.argon2_iterations, 3);
        assert_eq!(params.argon2_memory_kib, 19456);
        assert!(serde_json::from_str::<PasswordParams>(r#"{"argon2_iteration": 3}"#).is_err());
    }

    #[tokio::test]
    async fn owasp_defaults_hash_and_verify() {
        let passwords = Passwords::new(PasswordParams::default()).expect("defaults");
        let hash = passwords
            .hash("an OWASP-strength hash")
            .await
            .expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let verdict = passwords
            .verify("an OWASP-strength hash", &hash)
            .await
            .expect("verify");
        assert_eq!(verdict, Verification::matched(false));
        // A hash made with the small test parameters is outdated here.
        let weak = fast().hash("an OWASP-strength hash").await.expect("hash");
        let verdict = passwords
            .verify("an OWASP-strength hash", &weak)
            .await
            .expect("verify");
        assert_eq!(verdict, Verification::matched(true));
    }

    #[tokio::test]
    async fn semaphore_bounds_concurrent_hashes() {
        let passwords = Passwords::new(PasswordParams {
            argon2_memory_kib: 1024,
            max_concurrent_hashes: 1,
            ..fast_params()
        })
        .expect("valid params");
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let passwords = passwords.clone();
                tokio::spawn(async move { passwords.hash(&format!("parallel-{i}")).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("join").expect("hash");
        }
        assert_eq!(passwords.peak_concurrency(), 1);
    }

    /// With sleeps instead of hashes the overlap is certain, so the test
    /// shows both sides: work does run in parallel, up to the limit exactly.
    #[tokio::test]
    async fn semaphore_admits_exactly_the_limit() {
        let passwords = fast(); // max_concurrent_hashes = 2
        let started = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let passwords = passwords.clone();
                tokio::spawn(async move {
                    passwords
                        .run(|| std::thread::sleep(Duration::from_millis(50)))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("join").expect("run");
        }
        assert_eq!(passwords.peak_concurrency(), 2);
        // 6 jobs of 50 ms, 2 at a time: at least 3 rounds.
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn cancelled_callers_keep_their_permit_until_the_work_ends() {
        let passwords = Passwords::new(PasswordParams {
            max_concurrent_hashes: 1,
            ..fast_params()
        })
        .expect("valid params");
        let slow = passwords.run(|| std::thread::sleep(Duration::from_millis(200)));
        // The caller gives up while the work is running.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), slow)
                .await
                .is_err()
        );
        // The next job must wait for the abandoned one, not run beside it.
        passwords
            .run(|| std::thread::sleep(Duration::from_millis(10)))
            .await
            .expect("run");
        assert_eq!(passwords.peak_concurrency(), 1);
    }

    #[test]
    fn debug_output_shows_params_only() {
        let rendered = format!("{:?}", fast());
        assert!(rendered.contains("argon2_memory_kib: 64"), "{rendered}");
    }
}
