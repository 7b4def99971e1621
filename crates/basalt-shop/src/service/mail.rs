//! Order e-mails, sent by the job queue: a transition enqueues
//! [`ORDER_MAIL_JOB`] in its own transaction, and the job reads the order
//! and mails the buyer (retried with backoff if the mail server is down).

use std::sync::Arc;

use basalt_platform::Db;
use basalt_platform::db::Tx;
use basalt_platform::jobs::{JobError, JobQueue, NewJob};
use basalt_platform::mail::{Email, Mailer, deliver};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Currency, Money};
use crate::store::orders;

/// The job that mails a buyer about their order.
pub const ORDER_MAIL_JOB: &str = "shop.order_mail";

/// The job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderMail {
    order_id: Uuid,
    /// The status the mail announces.
    status: String,
}

/// Queues the mail announcing that `order` is now `status`, inside `tx`.
pub async fn queue(
    jobs: &JobQueue,
    tx: &mut Tx,
    order: Uuid,
    status: &str,
) -> Result<(), sqlx::Error> {
    let job = NewJob::new(
        ORDER_MAIL_JOB,
        &OrderMail {
            order_id: order,
            status: status.to_owned(),
        },
    );
    jobs.enqueue_in(tx, job).await.map(|_| ())
}

/// Registers the [`ORDER_MAIL_JOB`] handler, sending through `mailer`.
pub fn register(jobs: &JobQueue, db: Db, mailer: Arc<dyn Mailer>) {
    jobs.register(ORDER_MAIL_JOB, move |payload| {
        let (db, mailer) = (db.clone(), mailer.clone());
        async move {
            let job: OrderMail = serde_json::from_value(payload)
                .map_err(|e| JobError::Permanent(format!("not an order mail: {e}")))?;
            let Some(order) = orders::get(&db, job.order_id)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?
            else {
                return Err(JobError::Permanent("no such order".into()));
            };
            let total = Currency::parse(&order.currency)
                .map(|c| Money::new(order.total, c).to_string())
                .unwrap_or_default();
            let (subject, text) = match job.status.as_str() {
                "paid" => (
                    format!("Order #{}: thank you", order.number),
                    format!(
                        "We received your payment of {total} for order #{}.\n\
                         We will let you know when it ships.\n",
                        order.number
                    ),
                ),
                "shipped" => (
                    format!("Order #{} has shipped", order.number),
                    format!("Your order #{} is on its way.\n", order.number),
                ),
                "cancelled" => (
                    format!("Order #{} was cancelled", order.number),
                    format!(
                        "Your order #{} was cancelled before it was paid; nothing was charged.\n",
                        order.number
                    ),
                ),
                other => (
                    format!("Order #{}: {other}", order.number),
                    format!("Your order #{} is now {other}.\n", order.number),
                ),
            };
            let email = Email {
                to: order.email,
                subject,
                text,
            };
            deliver(&*mailer, &email).await
        }
    });
}
