//! The job queue's Prometheus metrics:
//! - `basalt_jobs_queued{state}`: jobs `queued`, `running` and `dead` in the
//!   whole queue (every node's), refreshed every [`DEPTH_EVERY`] by one
//!   `GROUP BY` on the nodes that run workers;
//! - `basalt_job_wait_seconds{kind}`: from when a job became due (enqueued,
//!   or its `run_at`, or its retry time) to when a worker started it;
//! - `basalt_job_run_seconds{kind,outcome}`: how long the handler ran, by
//!   outcome (`succeeded`, `failed` (to be retried), `dead`, `interrupted`,
//!   `lease_lost`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::JobQueue;
use super::store;
use super::worker::Phase;

/// How often a node with workers recounts the queue.
pub(super) const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// The states `basalt_jobs_queued` reports (succeeded jobs only accumulate:
/// counting them would grow more expensive with history).
const COUNTED_STATES: [&str; 3] = ["queued", "running", "dead"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 1 ms to ~9 minutes.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// The queue's metric handles. Clones share their values; until
/// [`JobMetrics::register`] puts them in a registry they are recorded but
/// not exported (a queue built outside an app).
#[derive(Clone)]
pub(super) struct JobMetrics {
    queued: Family<StateLabels, Gauge>,
    wait: Histograms<KindLabels>,
    run: Histograms<RunLabels>,
}

impl Default for JobMetrics {
    fn default() -> Self {
        Self {
            queued: Family::default(),
            wait: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            run: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
        }
    }
}

impl JobMetrics {
    /// Adds the metrics to `registry` (prefixed `basalt_` by it).
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "jobs_queued",
            "Jobs in the queue by state (queued, running, dead), every node's",
            self.queued.clone(),
        );
        registry.register(
            "job_wait_seconds",
            "Time from a job becoming due to a worker starting it",
            self.wait.clone(),
        );
        registry.register(
            "job_run_seconds",
            "Time a job's handler ran, by kind and outcome",
            self.run.clone(),
        );
    }

    pub(super) fn observe_wait(&self, kind: &str, seconds: f64) {
        self.wait
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(seconds.max(0.0));
    }

    pub(super) fn observe_run(&self, kind: &str, outcome: &'static str, seconds: f64) {
        self.run
            .get_or_create(&RunLabels {
                kind: kind.to_owned(),
                outcome,
            })
            .observe(seconds);
    }

    fn set_depth(&self, counts: &[(String, i64)]) {
        for state in COUNTED_STATES {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            self.queued.get_or_create(&StateLabels { state }).set(n);
        }
    }
}

/// Recounts the queue now and then every [`DEPTH_EVERY`], until shutdown.
pub(super) async fn refresh_depth(queue: JobQueue, mut phase: watch::Receiver<Phase>) {
    let mut every = tokio::time::interval(DEPTH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() != Phase::Running {
                    return;
                }
            }
            _ = every.tick() => match store::depth(&queue.db).await {
                Ok(counts) => queue.metrics.set_depth(&counts),
                Err(error) => tracing::debug!(error = %error, "cannot count the job queue"),
            },
        }
    }
}
