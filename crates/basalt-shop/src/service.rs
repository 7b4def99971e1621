//! [`Shop`]: the shop's service, every rule in one place. REST handlers and
//! GraphQL resolvers parse input, call one method and render the result.

use std::sync::Arc;

use basalt_identity::service::IdentityService;
use basalt_platform::db::Db;

use crate::config::ShopConfig;
use crate::payments::Payments;

/// The shop's service: cheap to clone, shared by every protocol.
#[derive(Clone)]
pub struct Shop {
    /// The database.
    pub db: Db,
    /// Accounts: buyers and admins.
    pub identity: IdentityService,
    /// The `[shop]` section.
    pub config: Arc<ShopConfig>,
    /// The payment providers configured here.
    pub payments: Payments,
}
