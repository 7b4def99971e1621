//! Counting the SQL statements a request runs, from sqlx's own log of
//! every statement (target `sqlx::query`).
//!
//! One global subscriber, interested in those events only, hands each to
//! the recorder of the thread it happened on. `#[tokio::test]` runs the
//! server's tasks on the test's own thread, so a recorder sees the
//! statements of its test's server and no other test's. (A thread-default
//! subscriber per test is not enough: tracing caches callsite interest
//! across threads, and tests running in parallel then lose events.)
//! sqlx's PostgreSQL driver runs and logs statements in the caller's task;
//! its SQLite driver does so on a thread of its own, so counts are taken on
//! PostgreSQL. Background loops (the outbox relay, job workers) run
//! statements of their own at any time: only statements on the tables a
//! test names are counted.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing_subscriber::layer::{Context, SubscriberExt as _};

const TARGET: &str = "sqlx::query";

thread_local! {
    static RECORDING: RefCell<Option<Statements>> = const { RefCell::new(None) };
}

/// The statements run while it is recording.
#[derive(Clone, Default)]
pub struct Statements(Arc<Mutex<Vec<String>>>);

struct Recorder;

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "db.statement" || field.name() == "summary" {
            self.0.push_str(&format!("{value:?} "));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "db.statement" || field.name() == "summary" {
            self.0.push_str(value);
            self.0.push(' ');
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn register_callsite(&self, metadata: &'static tracing::Metadata<'static>) -> Interest {
        if metadata.target() == TARGET {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target() == TARGET
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        RECORDING.with(|recording| {
            if let Some(statements) = recording.borrow().as_ref() {
                let mut text = Text(String::new());
                event.record(&mut text);
                if let Ok(mut all) = statements.0.lock() {
                    all.push(text.0);
                }
            }
        });
    }
}

/// Stops recording on this thread when dropped.
pub struct Recording;

impl Drop for Recording {
    fn drop(&mut self) {
        RECORDING.with(|recording| recording.borrow_mut().take());
    }
}

impl Statements {
    /// Starts recording on this thread until the guard is dropped.
    pub fn record() -> (Self, Recording) {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Recorder))
                .expect("no other global subscriber in the tests");
        });
        let statements = Self::default();
        RECORDING.with(|recording| *recording.borrow_mut() = Some(statements.clone()));
        (statements, Recording)
    }

    /// Forgets what was recorded so far.
    pub fn clear(&self) {
        if let Ok(mut all) = self.0.lock() {
            all.clear();
        }
    }

    /// The statements recorded that mention any of `tables`.
    pub fn on(&self, tables: &[&str]) -> Vec<String> {
        self.0
            .lock()
            .map(|all| {
                all.iter()
                    .filter(|s| tables.iter().any(|t| s.contains(t)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every statement recorded.
    pub fn all(&self) -> usize {
        self.0.lock().map(|all| all.len()).unwrap_or_default()
    }
}
