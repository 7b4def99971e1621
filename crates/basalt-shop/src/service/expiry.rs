//! Releasing expired reservations: a recurring job (once across the
//! cluster, platform jobs) finds unpaid orders whose reservation has
//! expired and cancels each (`Shop::cancel_unpaid`): payment cancelled at
//! the provider, stock back, history recorded.

use basalt_platform::error::Failure;
use basalt_platform::jobs::{JobError, JobQueue, ScheduleError};
use chrono::Utc;

use super::{Shop, state};
use crate::store::{inventory, orders};

/// The job (and schedule) name.
pub const RELEASE_JOB: &str = "shop.release_reservations";

/// Orders handled per statement of a sweep.
const BATCH: i64 = 100;

impl Shop {
    /// Cancels every order whose reservation expired; how many.
    pub async fn release_expired(&self) -> Result<usize, Failure> {
        let mut released = 0;
        loop {
            let due =
                inventory::expired_orders(&self.db, Utc::now().timestamp_millis(), BATCH).await?;
            let mut progressed = false;
            for id in &due {
                let Some(row) = orders::get(&self.db, *id).await? else {
                    continue;
                };
                if row.status != state::PENDING_PAYMENT {
                    continue;
                }
                match self
                    .cancel_unpaid(&row, "system", "reservation expired")
                    .await
                {
                    Ok(true) => {
                        released += 1;
                        progressed = true;
                    }
                    Ok(false) => {}
                    Err(failure) => {
                        tracing::warn!(order = %id, ?failure, "could not release a reservation")
                    }
                }
            }
            if due.len() < BATCH as usize || !progressed {
                return Ok(released);
            }
        }
    }

    /// Registers the sweep and its schedule (`shop.reservation_sweep`).
    ///
    /// The handler holds a clone of this service: call it on one whose
    /// queue is [`JobQueue::enqueuer`], or the queue would keep itself alive
    /// through its own handler.
    pub fn register_expiry(&self, jobs: &JobQueue) -> Result<(), ScheduleError> {
        let shop = self.clone();
        jobs.register(RELEASE_JOB, move |_| {
            let shop = shop.clone();
            async move {
                let released = shop
                    .release_expired()
                    .await
                    .map_err(|f| JobError::Retry(format!("{f:?}")))?;
                if released > 0 {
                    tracing::info!(released, "released expired reservations");
                }
                Ok(())
            }
        });
        jobs.recurring(
            RELEASE_JOB,
            &self.config.reservation_sweep,
            RELEASE_JOB,
            &(),
        )
    }
}
