//! Work a request hands off to run to its end even if the client leaves
//! (a sign-in check that must settle the attempt it counted), which a
//! graceful shutdown waits for like in-flight requests.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Tracks the tasks started with [`BackgroundTasks::spawn`]. Clones share
/// the count.
#[derive(Debug, Clone, Default)]
pub struct BackgroundTasks {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: AtomicUsize,
    started: AtomicUsize,
    finished: Notify,
}

/// Counts a task until it ends, however it ends (a panic included).
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.finished.notify_waiters();
        }
    }
}

impl BackgroundTasks {
    /// Runs `task` on a task of its own, counted until it ends.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        self.inner.started.fetch_add(1, Ordering::AcqRel);
        let running = Running(self.inner.clone());
        tokio::spawn(async move {
            let _running = running;
            task.await
        })
    }

    /// Tasks started and not yet ended.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Tasks started since this tracker was made, ended or not: lets a
    /// caller (a test) see that the work it caused has begun.
    pub fn started(&self) -> usize {
        self.inner.started.load(Ordering::Acquire)
    }

    /// Waits until no task runs, or `grace` has passed; returns how many
    /// still run (0: all ended).
    pub async fn drain(&self, grace: Duration) -> usize {
        let all_ended = async {
            loop {
                let finished = self.inner.finished.notified();
                if self.running() == 0 {
                    return;
                }
                finished.await;
            }
        };
        let _ = tokio::time::timeout(grace, all_ended).await;
        self.running()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_every_task_and_no_longer_than_the_grace() {
        let tasks = BackgroundTasks::default();
        assert_eq!(tasks.drain(Duration::from_millis(10)).await, 0);
        for ms in [20, 60] {
            tasks.spawn(tokio::time::sleep(Duration::from_millis(ms)));
        }
        tasks.spawn(async { panic!("a failing task still ends") });
        assert_eq!(tasks.drain(Duration::from_secs(5)).await, 0);
        assert_eq!(tasks.started(), 3, "ended tasks stay counted as started");

        tasks.spawn(tokio::time::sleep(Duration::from_secs(60)));
        let started = std::time::Instant::now();
        assert_eq!(tasks.drain(Duration::from_millis(50)).await, 1);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
