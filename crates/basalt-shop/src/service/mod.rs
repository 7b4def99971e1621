//! [`Shop`]: the shop's service, every rule in one place. REST handlers and
//! GraphQL resolvers parse input, call one method and render the result.
//!
//! - [`catalog`]: products, variants, prices, search;
//! - [`cart`]: carts, their tokens, the merge on sign-in;
//! - [`pricing`]: subtotal, discount, shipping and tax, on the server;
//! - [`checkout`]: reserving stock and placing the order, in one
//!   transaction (the oversell guard is `store::inventory`);
//! - [`state`]: the order state machine;
//! - [`orders`]: reading orders, admin transitions, refunds;
//! - [`payment`]: [`Shop::payment_succeeded`], the one completion path of
//!   the client's confirmation and the providers' webhooks;
//! - [`provider_webhooks`]: the providers' verified, deduplicated webhooks;
//! - [`expiry`]: the recurring job releasing expired reservations;
//! - [`discounts`]: discount codes;
//! - [`events`]: the order events published through the outbox;
//! - [`mail`]: order e-mails through the job queue.

pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod discounts;
pub mod events;
pub mod expiry;
pub mod mail;
pub mod orders;
pub mod payment;
pub mod pricing;
pub mod provider_webhooks;
pub mod state;

use std::sync::Arc;

use basalt_platform::db::Db;
use basalt_platform::error::{ErrorKind, Failure, FieldError};
use basalt_platform::jobs::JobQueue;
use uuid::Uuid;

use crate::config::ShopConfig;
use crate::payments::{PaymentError, Payments};

/// The shop's service: cheap to clone, shared by every protocol.
#[derive(Clone)]
pub struct Shop {
    /// The database.
    pub db: Db,
    /// The `[shop]` section.
    pub config: Arc<ShopConfig>,
    /// The payment providers configured here.
    pub payments: Payments,
    /// The job queue (order e-mails).
    pub jobs: JobQueue,
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("payments", &self.payments)
            .finish_non_exhaustive()
    }
}

/// Who is asking: the signed-in user (and whether an admin), and the
/// `X-Cart-Token` they sent, if any.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The signed-in user.
    pub user_id: Option<Uuid>,
    /// Whether they are an admin.
    pub admin: bool,
    /// An anonymous cart's token.
    pub cart_token: Option<String>,
}

impl Caller {
    /// How history records them: their id, or `anonymous`.
    pub fn by(&self) -> String {
        self.user_id
            .map_or_else(|| "anonymous".to_owned(), |id| id.to_string())
    }
}

/// A 404 that names what was not found.
pub(crate) fn not_found(what: &str) -> Failure {
    Failure::new(ErrorKind::NotFound).with_detail(format!("{what} not found"))
}

/// A 409 that says why.
pub(crate) fn conflict(why: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::Conflict).with_detail(why)
}

/// A 422 about one field.
pub(crate) fn invalid(field: &str, message: &str) -> Failure {
    Failure::invalid(vec![FieldError::new(field, message)])
}

/// A provider's failure as the API shows it.
pub(crate) fn payment_failure(error: PaymentError) -> Failure {
    match error {
        PaymentError::NotConfigured(_) => invalid("provider", &error.to_string()),
        PaymentError::Refused(_) => conflict(error.to_string()),
        PaymentError::Unverified(_) => Failure::bad_request(error.to_string()),
        PaymentError::Unavailable(_) => {
            tracing::warn!(%error, "payment provider unavailable");
            Failure::unavailable("the payment provider")
        }
    }
}
