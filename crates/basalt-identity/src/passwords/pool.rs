//! A small pool of dedicated threads for password hashing, at a lower OS
//! scheduling priority than the threads that serve requests.
//!
//! Why not tokio's blocking pool: its threads run at normal priority, so
//! during a sign-in storm every core is busy with a 15 ms Argon2id hash and a
//! cheap request waits a scheduler time slice for a core (measured: the p99 of
//! a read went from 0.6 ms idle to 4.5 ms in a storm; `BENCHMARKS.md`). A
//! hashing thread at [`HashPriority::Idle`] yields its core as soon as a
//! request thread wakes, so reads keep their idle latency and the hashes use
//! every cycle left over. Lowering one's own priority needs no privilege.

//!
//! A thread that has been idle for [`RELEASE_AFTER`] frees its Argon2 working
//! memory ([`super::scratch`]); a busy one reuses it from hash to hash.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// The OS scheduling priority of the password hashing threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashPriority {
    /// Linux `SCHED_IDLE`: hashes run only on CPU time that request handling
    /// does not want. Reads stay fast during a sign-in storm; on a machine
    /// saturated by other work, sign-ins slow down first.
    #[default]
    Idle,
    /// Normal scheduling at nice 19: almost as yielding as `idle`, with a
    /// larger guaranteed share of a busy CPU.
    Low,
    /// The priority of the rest of the process.
    Normal,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long a hashing thread stays idle before it frees its working memory.
/// Sign-ins in a burst come closer together than this, so a storm reuses
/// the memory from hash to hash.
pub(super) const RELEASE_AFTER: Duration = Duration::from_secs(2);

/// How long an idle-priority hashing thread keeps looking for its next job
/// (yielding the CPU in between) before it goes to sleep.
///
/// Why: scheduler traces of a sign-in storm (Linux 6.18, EEVDF) showed a
/// hashing thread that had just been woken with a job running on for up to
/// a whole tick (4 ms at `HZ=250`) while a request thread woken on the same
/// CPU waited: the kernel's reschedule interrupt arrived, and the hash was
/// picked again. Most likely the woken `SCHED_IDLE` thread is put back with
/// the CPU time it is owed, which at its tiny weight drags the queue's
/// average virtual time back so far that the request thread is not yet
/// "eligible" to run. A storm keeps the queue fed within this window, so
/// handing jobs over without sleeping avoids that re-entry. In alternating
/// short runs the read probe's p99 during a storm went from 1.75-2.47 ms to
/// 0.65-1.91 ms (`bench/notes/identity-signin.md`). The spinning costs only
/// CPU time nobody else wants: the thread is at `SCHED_IDLE` and yields on
/// every turn.
const HANDOFF_SPIN: Duration = Duration::from_micros(500);

/// Runs closures on `threads` dedicated threads. Dropping the pool lets its
/// threads finish the jobs queued and exit.
pub(super) struct HashPool {
    shared: Arc<Shared>,
}

/// The queue, and a condition variable each idle thread waits on with its
/// own timeout (a channel receiver shared behind a mutex would let only the
/// thread holding it time out).
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl HashPool {
    /// Starts the threads. Failing to lower the priority is logged and the
    /// thread carries on at normal priority: slower reads beat no sign-ins.
    pub(super) fn start(threads: usize, priority: HashPriority) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        for index in 0..threads {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("basalt-hash-{index}"))
                .spawn(move || {
                    lower_priority(priority);
                    // Spinning at normal priority would take CPU from requests.
                    let spin = match priority {
                        HashPriority::Idle => HANDOFF_SPIN,
                        HashPriority::Low | HashPriority::Normal => Duration::ZERO,
                    };
                    while let Some(job) = shared.next_job(spin) {
                        // A panicking hash must not shrink the pool; the
                        // caller sees its reply channel closed instead.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                    super::scratch::release();
                })?;
        }
        Ok(Self { shared })
    }

    /// Runs `work` on a pool thread and waits for its result without
    /// blocking the async runtime. `Err` if the work panicked.
    pub(super) async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may have gone away; the work is done either way.
            let _ = reply.send(work());
        });
        {
            let mut state = self.shared.lock();
            anyhow::ensure!(!state.closed, "the password hashing threads have stopped");
            state.jobs.push_back(job);
        }
        self.shared.wake.notify_one();
        result
            .await
            .map_err(|_| anyhow::anyhow!("password hashing panicked"))
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job; `None` once the pool is closed and drained. Looks for
    /// one for `spin` (yielding in between, see [`HANDOFF_SPIN`]) before it
    /// sleeps. Frees the thread's working memory whenever it has waited
    /// [`RELEASE_AFTER`].
    fn next_job(&self, spin: Duration) -> Option<Job> {
        let spin_until = Instant::now() + spin;
        loop {
            {
                let mut state = self.lock();
                if let Some(job) = state.jobs.pop_front() {
                    return Some(job);
                }
                if state.closed {
                    return None;
                }
            }
            if Instant::now() >= spin_until {
                break;
            }
            std::thread::yield_now();
        }
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            let (next, wait) = self
                .wake
                .wait_timeout(state, RELEASE_AFTER)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            if wait.timed_out() && state.jobs.is_empty() {
                drop(state);
                super::scratch::release();
                state = self.lock();
            }
        }
    }
}

fn lower_priority(priority: HashPriority) {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let policy = match priority {
        HashPriority::Normal => return,
        HashPriority::Idle => NormalThreadSchedulePolicy::Idle,
        HashPriority::Low => NormalThreadSchedulePolicy::Other,
    };
    // `Min` is nice 19 under `Other`, and the only valid value under `Idle`.
    let result = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(policy),
    );
    if let Err(error) = result {
        tracing::warn!(
            ?priority,
            ?error,
            "could not lower the priority of a password hashing thread; it runs at normal priority"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_survives_a_panic() {
        let pool = HashPool::start(1, HashPriority::Idle).expect("pool starts");
        assert_eq!(pool.run(|| 6 * 7).await.expect("work runs"), 42);
        let panicked = pool.run(|| -> u32 { panic!("boom") }).await;
        assert!(panicked.is_err());
        // The single thread is still there to take the next job.
        assert_eq!(pool.run(|| 1).await.expect("pool still works"), 1);
    }

    #[tokio::test]
    async fn an_idle_thread_frees_its_working_memory() {
        let pool = HashPool::start(1, HashPriority::Normal).expect("pool starts");
        let held = pool
            .run(|| {
                super::super::scratch::with_blocks(64, |_| ());
                super::super::scratch::held()
            })
            .await
            .expect("runs");
        assert_eq!(held, 64);
        let kept = pool.run(super::super::scratch::held).await.expect("runs");
        assert_eq!(kept, 64, "kept from job to job");
        tokio::time::sleep(RELEASE_AFTER + Duration::from_millis(500)).await;
        let after = pool.run(super::super::scratch::held).await.expect("runs");
        assert_eq!(after, 0, "freed after {RELEASE_AFTER:?} idle");
    }

    /// Within its spin window a thread finds a job queued without a wake-up
    /// (it never went to sleep); past it, only the wake-up would reach it.
    #[test]
    fn a_spinning_thread_takes_the_next_job_without_being_woken() {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let taker = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let started = Instant::now();
                let job = shared.next_job(Duration::from_secs(10));
                (job.is_some(), started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        // Queued behind the pool's back: no notify.
        shared.lock().jobs.push_back(Box::new(|| ()));
        let (found, waited) = taker.join().expect("taker");
        assert!(found);
        assert!(
            waited < RELEASE_AFTER,
            "took {waited:?}: the thread slept instead of spinning"
        );
    }

    /// Reads the scheduling policy of the thread the work runs on, from
    /// /proc, as the kernel sees it.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn threads_run_at_the_configured_priority() {
        fn policy_and_nice() -> (String, String) {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
            // Fields after the `(comm)`: state is 3rd overall; nice is 19th,
            // policy is 41st (see proc(5)).
            let rest = &stat[stat.rfind(')').expect("comm") + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            (fields[41 - 3].to_owned(), fields[19 - 3].to_owned())
        }
        const SCHED_OTHER: &str = "0";
        const SCHED_IDLE: &str = "5";
        let idle = HashPool::start(1, HashPriority::Idle).expect("pool");
        assert_eq!(idle.run(policy_and_nice).await.expect("runs").0, SCHED_IDLE);
        let low = HashPool::start(1, HashPriority::Low).expect("pool");
        assert_eq!(
            low.run(policy_and_nice).await.expect("runs"),
            (SCHED_OTHER.to_owned(), "19".to_owned())
        );
        let normal = HashPool::start(1, HashPriority::Normal).expect("pool");
        assert_eq!(
            normal.run(policy_and_nice).await.expect("runs").0,
            SCHED_OTHER
        );
    }
}
