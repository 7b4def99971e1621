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
//! At that priority each thread is also pinned to a CPU of its own, and
//! unpinned again if it seems starved there ([`STARVED_AFTER`]).
//!
//! A thread that has been idle for [`RELEASE_AFTER`] frees its Argon2 working
//! memory ([`super::scratch`]); a busy one reuses it from hash to hash.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::affinity;

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

/// How long a pinned hashing thread may hold one job before it is let run
/// on any CPU.
///
/// Why pin at all: the same traces showed the long waits also after a
/// hashing thread was moved between CPUs, which re-inserts it with its lag
/// just like a wake-up. Pinned one to a CPU, the threads are never moved. In
/// alternating short storms (`bench/notes/identity-signin.md`) the read
/// probe's p99 fell from 0.88-2.20 ms to 0.60-1.34 ms, and sign-ins rose.
///
/// Why unpin: a `SCHED_IDLE` thread pinned to a CPU that some other work
/// keeps busy gets about 0.3 % of it, and the job it holds would crawl while
/// another CPU may sit idle. A hash takes about 15 ms at OWASP parameters;
/// a job held this long means the thread is starved (or the parameters are
/// far above OWASP's, where pinning matters little). Callers waiting for a
/// hash check for that each time this much has passed.
const STARVED_AFTER: Duration = Duration::from_millis(500);

/// How long an unpinned thread runs anywhere before it pins itself again
/// (after its current job).
const UNPINNED_FOR: Duration = Duration::from_secs(30);

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
    pinning: Pinning,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    closed: bool,
    /// One per thread, by index.
    threads: Vec<ThreadSlot>,
}

#[derive(Default)]
struct ThreadSlot {
    /// When it took the job it is running.
    busy_since: Option<Instant>,
    /// Set once the thread has pinned itself.
    pinned: Option<Pinned>,
}

struct Pinned {
    thread: affinity::ThreadId,
    cpu: usize,
    /// While set, the thread may run on any CPU, until then.
    unpinned_until: Option<Instant>,
}

/// Which CPU each thread is pinned to, and the timing of the starvation
/// guard ([`STARVED_AFTER`], [`UNPINNED_FOR`]; shorter in tests).
#[derive(Debug, Clone)]
struct Pinning {
    /// CPU of thread `i`; empty: nothing is pinned.
    cpu_of_thread: Vec<usize>,
    /// Every CPU the process may use: where an unpinned thread may run.
    allowed: Vec<usize>,
    starved_after: Duration,
    unpinned_for: Duration,
}

impl Pinning {
    /// One CPU per thread at `idle` priority, when there are more than one
    /// and enough for every thread; otherwise none.
    fn plan(threads: usize, priority: HashPriority) -> Self {
        let allowed = affinity::allowed_cpus();
        let pin = priority == HashPriority::Idle && allowed.len() > 1 && threads <= allowed.len();
        Self {
            cpu_of_thread: if pin {
                allowed[..threads].to_vec()
            } else {
                Vec::new()
            },
            allowed,
            starved_after: STARVED_AFTER,
            unpinned_for: UNPINNED_FOR,
        }
    }
}

impl HashPool {
    /// Starts the threads. Failing to lower the priority is logged and the
    /// thread carries on at normal priority: slower reads beat no sign-ins.
    pub(super) fn start(threads: usize, priority: HashPriority) -> anyhow::Result<Self> {
        Self::start_with(threads, priority, Pinning::plan(threads, priority))
    }

    fn start_with(
        threads: usize,
        priority: HashPriority,
        pinning: Pinning,
    ) -> anyhow::Result<Self> {
        let state = State {
            threads: (0..threads).map(|_| ThreadSlot::default()).collect(),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Condvar::new(),
            pinning,
        });
        for index in 0..threads {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("basalt-hash-{index}"))
                .spawn(move || {
                    lower_priority(priority);
                    shared.pin(index);
                    // Spinning at normal priority would take CPU from requests.
                    let spin = match priority {
                        HashPriority::Idle => HANDOFF_SPIN,
                        HashPriority::Low | HashPriority::Normal => Duration::ZERO,
                    };
                    while let Some(job) = shared.next_job(index, spin) {
                        // A panicking hash must not shrink the pool; the
                        // caller sees its reply channel closed instead.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                        shared.job_done(index);
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
        let mut result = result;
        loop {
            match tokio::time::timeout(self.shared.pinning.starved_after, &mut result).await {
                Ok(done) => {
                    return done.map_err(|_| anyhow::anyhow!("password hashing panicked"));
                }
                Err(_waiting) => self.shared.unpin_starved(),
            }
        }
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
    fn next_job(&self, index: usize, spin: Duration) -> Option<Job> {
        let spin_until = Instant::now() + spin;
        loop {
            {
                let mut state = self.lock();
                if let Some(job) = state.take_job(index) {
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
            if let Some(job) = state.take_job(index) {
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

impl Shared {
    /// Pins thread `index` to its CPU, if the plan gives it one.
    fn pin(&self, index: usize) {
        let Some(&cpu) = self.pinning.cpu_of_thread.get(index) else {
            return;
        };
        match affinity::pin_current(cpu) {
            Ok(()) => {
                self.lock().threads[index].pinned = Some(Pinned {
                    thread: affinity::current_thread(),
                    cpu,
                    unpinned_until: None,
                });
            }
            Err(error) => {
                tracing::warn!(cpu, %error, "could not pin a password hashing thread to a CPU");
            }
        }
    }

    /// Thread `index` finished its job; pins it again once its time
    /// unpinned is over.
    fn job_done(&self, index: usize) {
        let now = Instant::now();
        let repin = {
            let mut state = self.lock();
            let slot = &mut state.threads[index];
            slot.busy_since = None;
            match &mut slot.pinned {
                Some(pinned) if pinned.unpinned_until.is_some_and(|until| now >= until) => {
                    pinned.unpinned_until = None;
                    Some(pinned.cpu)
                }
                _ => None,
            }
        };
        if let Some(cpu) = repin
            && let Err(error) = affinity::pin_current(cpu)
        {
            tracing::warn!(cpu, %error, "could not pin a password hashing thread again");
        }
    }

    /// Lets every pinned thread that has held its job for too long run on
    /// any CPU, for a while (see [`STARVED_AFTER`]).
    fn unpin_starved(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        for (index, slot) in state.threads.iter_mut().enumerate() {
            let ThreadSlot {
                busy_since: Some(since),
                pinned: Some(pinned),
            } = slot
            else {
                continue;
            };
            if pinned.unpinned_until.is_some()
                || now.duration_since(*since) < self.pinning.starved_after
            {
                continue;
            }
            match affinity::unpin(pinned.thread, &self.pinning.allowed) {
                Ok(()) => {
                    pinned.unpinned_until = Some(now + self.pinning.unpinned_for);
                    tracing::warn!(
                        thread = index,
                        cpu = pinned.cpu,
                        held_ms = now.duration_since(*since).as_millis(),
                        "a password hashing thread held its job this long, most likely starved \
                         by other work on its CPU; it may run on any CPU for a while"
                    );
                }
                Err(error) => {
                    tracing::warn!(thread = index, %error, "could not unpin a password hashing thread");
                }
            }
        }
    }
}

impl State {
    /// The next job, marking thread `index` busy with it.
    fn take_job(&mut self, index: usize) -> Option<Job> {
        let job = self.jobs.pop_front()?;
        if let Some(slot) = self.threads.get_mut(index) {
            slot.busy_since = Some(Instant::now());
        }
        Some(job)
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
            pinning: Pinning::plan(1, HashPriority::Normal),
        });
        let taker = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let started = Instant::now();
                let job = shared.next_job(0, Duration::from_secs(10));
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

    /// The CPUs the calling thread may run on.
    #[cfg(target_os = "linux")]
    fn my_cpus() -> Vec<usize> {
        affinity::cpus_of(affinity::current_thread())
    }

    /// The CPUs this process may use, when there are two or more (pinning
    /// needs them); otherwise says the test is skipped.
    #[cfg(target_os = "linux")]
    fn two_cpus_or_skip() -> Option<Vec<usize>> {
        let allowed = affinity::allowed_cpus();
        if allowed.len() < 2 {
            eprintln!("skipped: pinning needs two CPUs, this process may use {allowed:?}");
            return None;
        }
        Some(allowed)
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn idle_threads_are_pinned_one_cpu_each() {
        let Some(allowed) = two_cpus_or_skip() else {
            return;
        };
        let pool = HashPool::start(2, HashPriority::Idle).expect("pool");
        let deadline = Instant::now() + Duration::from_secs(5);
        let pinned = loop {
            let cpus: Vec<Option<Vec<usize>>> = pool
                .shared
                .lock()
                .threads
                .iter()
                .map(|t| t.pinned.as_ref().map(|p| affinity::cpus_of(p.thread)))
                .collect();
            if cpus.iter().all(Option::is_some) || Instant::now() > deadline {
                break cpus;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(
            pinned,
            vec![Some(vec![allowed[0]]), Some(vec![allowed[1]])],
            "thread i on the i-th CPU, and only there"
        );
        let normal = HashPool::start(2, HashPriority::Normal).expect("pool");
        assert_eq!(
            normal.run(my_cpus).await.expect("runs"),
            allowed,
            "not pinned"
        );
    }

    /// A job held past the starvation limit gets its thread unpinned; once
    /// the unpinned time is over, the thread pins itself again.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_thread_holding_its_job_too_long_is_unpinned_then_pinned_again() {
        let Some(allowed) = two_cpus_or_skip() else {
            return;
        };
        let pinning = Pinning {
            cpu_of_thread: vec![allowed[1]],
            allowed: allowed.clone(),
            starved_after: Duration::from_millis(100),
            unpinned_for: Duration::from_millis(200),
        };
        let pool = HashPool::start_with(1, HashPriority::Idle, pinning).expect("pool");
        assert_eq!(pool.run(my_cpus).await.expect("runs"), vec![allowed[1]]);

        // Stands for a hash that makes no progress: holds the job until its
        // thread may run anywhere (or gives up).
        let unpinned_while_held = pool
            .run(|| {
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(10) {
                    if my_cpus().len() > 1 {
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                false
            })
            .await
            .expect("runs");
        assert!(unpinned_while_held, "the thread was never unpinned");

        let deadline = Instant::now() + Duration::from_secs(10);
        let mut cpus = pool.run(my_cpus).await.expect("runs");
        while cpus != vec![allowed[1]] && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cpus = pool.run(my_cpus).await.expect("runs");
        }
        assert_eq!(
            cpus,
            vec![allowed[1]],
            "pinned again after its time unpinned"
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
