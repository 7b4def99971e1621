//! CPU affinity for the hashing threads: pinning one to a CPU, and letting
//! it run anywhere again (see [`super::pool`] for why). Linux only; elsewhere
//! no CPU is reported, and the pool pins nothing.

use std::io;

/// A thread, as the kernel knows it, so that another thread can change its
/// affinity.
#[derive(Debug, Clone, Copy)]
pub(super) struct ThreadId(#[cfg(target_os = "linux")] rustix::thread::Pid);

/// The CPUs this thread may run on (the process's, at start-up), in order.
pub(super) fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::{CpuSet, sched_getaffinity};
        match sched_getaffinity(None) {
            Ok(set) => (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
            Err(_) => Vec::new(),
        }
    }
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// The calling thread.
pub(super) fn current_thread() -> ThreadId {
    #[cfg(target_os = "linux")]
    return ThreadId(rustix::thread::gettid());
    #[cfg(not(target_os = "linux"))]
    ThreadId()
}

/// Restricts the calling thread to `cpu`.
pub(super) fn pin_current(cpu: usize) -> io::Result<()> {
    set_cpus(None, &[cpu])
}

/// Lets `thread` run on any of `cpus`.
pub(super) fn unpin(thread: ThreadId, cpus: &[usize]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    return set_cpus(Some(thread), cpus);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (thread, cpus);
        Ok(())
    }
}

fn set_cpus(thread: Option<ThreadId>, cpus: &[usize]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::{CpuSet, sched_setaffinity};
        let mut set = CpuSet::new();
        for &cpu in cpus {
            set.set(cpu);
        }
        sched_setaffinity(thread.map(|t| t.0), &set).map_err(io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (thread, cpus);
        Ok(())
    }
}

/// The CPUs `thread` may run on.
#[cfg(all(test, target_os = "linux"))]
pub(super) fn cpus_of(thread: ThreadId) -> Vec<usize> {
    use rustix::thread::{CpuSet, sched_getaffinity};
    let set = sched_getaffinity(Some(thread.0)).expect("sched_getaffinity");
    (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
}
