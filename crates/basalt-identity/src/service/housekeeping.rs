//! Deleting what has ended: sessions, refresh-token families and mailed
//! tokens past their end. They are refused already; this keeps the tables
//! from growing forever. Hourly, once across the cluster, as the recurring
//! job [`PRUNE_JOB`]. The audit log is kept: it is the security record.

use std::sync::Arc;

use basalt_platform::Db;
use basalt_platform::jobs::{JobQueue, ScheduleError};
use chrono::{DateTime, TimeDelta, Utc};

use super::IdentityService;
use crate::config::IdentityConfig;
use crate::error::IdentityError;
use crate::store::sessions::SessionStore;
use crate::store::{email_tokens, refresh_tokens};

/// The recurring job's kind and schedule name.
pub const PRUNE_JOB: &str = "identity.prune_expired";
/// Hourly, at minute 23 (away from the hour, when other cron work piles up).
const PRUNE_SCHEDULE: &str = "23 * * * *";

/// How many rows a prune deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Ended browser sessions (always 0 with the Redis store, which lets
    /// Redis expire them).
    pub sessions: u64,
    /// Refresh tokens of ended families.
    pub refresh_tokens: u64,
    /// Expired mailed tokens.
    pub email_tokens: u64,
}

impl IdentityService {
    /// Deletes everything that has ended as of `now` (see the module docs).
    pub async fn prune_expired(&self, now: DateTime<Utc>) -> Result<Pruned, IdentityError> {
        let idle = IdentityConfig::secs(self.inner.config.session_idle_timeout_secs);
        Ok(prune(&self.inner.db, &self.inner.sessions, idle, now).await?)
    }

    /// Registers [`PRUNE_JOB`]'s handler and hourly schedule on `jobs`.
    pub fn schedule_housekeeping(&self, jobs: &JobQueue) -> Result<(), ScheduleError> {
        // The handler holds what it needs, not the service: the service
        // holds the queue, which holds its handlers.
        let db = self.inner.db.clone();
        let sessions = self.inner.sessions.clone();
        let idle = IdentityConfig::secs(self.inner.config.session_idle_timeout_secs);
        jobs.register(PRUNE_JOB, move |_| {
            let (db, sessions) = (db.clone(), sessions.clone());
            async move {
                let pruned = prune(&db, &sessions, idle, Utc::now())
                    .await
                    .map_err(anyhow::Error::from)?;
                tracing::debug!(?pruned, "deleted ended sessions and tokens");
                Ok(())
            }
        });
        jobs.recurring(PRUNE_JOB, PRUNE_SCHEDULE, PRUNE_JOB, &())
    }
}

async fn prune(
    db: &Db,
    sessions: &Arc<dyn SessionStore>,
    idle: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Pruned, sqlx::Error> {
    Ok(Pruned {
        sessions: sessions.prune(now, now - idle).await?,
        refresh_tokens: refresh_tokens::prune(db, now).await?,
        email_tokens: email_tokens::prune(db, now).await?,
    })
}
