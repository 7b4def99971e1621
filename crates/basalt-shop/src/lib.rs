//! The shop module: catalog, carts, checkout, orders, discounts, and Stripe
//! and PayPal payments, correct under concurrency (no oversell, no double
//! charge), over REST under `/api/shop` and GraphQL.
//!
//! Where things are:
//! - [`money`]: integer minor units with an ISO 4217 currency, everywhere;
//! - [`service`]: [`Shop`], every rule, whatever protocol asks;
//! - [`payments`]: the provider trait and its Stripe and PayPal adapters;
//! - [`signature`]: Stripe's webhook signature scheme, verified on the way
//!   in and used to sign merchant webhooks on the way out;
//! - [`idempotency`]: `Idempotency-Key` on every mutating `POST` (the
//!   platform's middleware with the shop's caller scope);
//! - [`merchant_webhooks`]: endpoints merchants register, and the order
//!   events delivered to them, signed, retried, logged;
//! - [`routes`]: REST; [`graphql`]: the shop's part of the GraphQL schema,
//!   through the same service; [`config`]: the `[shop]` section.
//!
//! Buyers and admins are identity accounts, found through
//! [`basalt_identity::service::IdentityService`]; the shop's tables refer to
//! them by id only.
//!
//! Migrations are numbered 5000–5999: 5001–5099 catalog, carts, checkout
//! and orders; 5100–5199 payments; 5200–5299 merchant webhooks (5201).
//! Idempotency keys are the platform's (its migration 1201), as any module
//! may use them.

pub mod config;
pub mod graphql;
pub mod idempotency;
pub mod merchant_webhooks;
pub mod model;
pub mod money;
pub mod payments;
pub mod routes;
pub mod service;
pub mod signature;
mod store;

use std::sync::Arc;

use basalt_identity::service::IdentityService;
use basalt_platform::config::{Config, ConfigError};
use basalt_platform::db::MigrationFile;
use basalt_platform::module::Wiring;
use basalt_platform::{Module, Platform};
use futures_util::future::BoxFuture;

use basalt_platform::jobs::JobError;

use crate::config::ShopConfig;
use crate::merchant_webhooks::MerchantWebhooks;
use crate::merchant_webhooks::delivery::{DeliverJob, Deliverer};
use crate::merchant_webhooks::service::FanOut;
use crate::payments::Payments;
use crate::service::Shop;

/// The configuration section's name.
pub const SECTION: &str = "shop";

/// The shop's migrations (versions 5000–5999).
pub static MIGRATIONS: &[MigrationFile] = &[
    MigrationFile {
        version: 5001,
        description: "create_shop",
        sqlite: include_str!("../migrations/sqlite/5001_create_shop.sql"),
        postgres: include_str!("../migrations/postgres/5001_create_shop.sql"),
    },
    MigrationFile {
        version: 5101,
        description: "provider_events",
        sqlite: include_str!("../migrations/sqlite/5101_provider_events.sql"),
        postgres: include_str!("../migrations/postgres/5101_provider_events.sql"),
    },
    MigrationFile {
        version: 5201,
        description: "create_merchant_webhooks",
        sqlite: include_str!("../migrations/sqlite/5201_create_merchant_webhooks.sql"),
        postgres: include_str!("../migrations/postgres/5201_create_merchant_webhooks.sql"),
    },
];

/// Reads and checks the `[shop]` section.
pub fn shop_config(config: &Config) -> Result<ShopConfig, ConfigError> {
    let section: ShopConfig = config.section(SECTION)?;
    section.validate().map_err(|problem| ConfigError {
        key: "BASALT_SHOP".into(),
        problem,
    })?;
    Ok(section)
}

/// The module, as listed by the binary.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShopModule;

impl Module for ShopModule {
    fn name(&self) -> &'static str {
        SECTION
    }

    fn migrations(&self) -> &'static [MigrationFile] {
        MIGRATIONS
    }

    fn config(&self, config: &Config) -> Result<Option<toml::Value>, ConfigError> {
        Config::printable("BASALT_SHOP", &shop_config(config)?)
    }

    fn wire<'a>(
        &'a self,
        platform: &'a Platform,
        wiring: &'a mut Wiring,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // Buyers and admins are authenticated by the identity module's
            // extractors (routes, GraphQL); the service itself needs only
            // their ids. It holds no IdentityService: that holds the job
            // queue, and the shop's job handlers hold the service.
            platform
                .services
                .require::<IdentityService>()
                .map_err(|e| e.context("the shop needs the identity module"))?;
            let config = Arc::new(shop_config(&platform.config)?);
            let payments = Payments::from_config(&config)?;
            tracing::info!(providers = ?payments, "shop payment providers");
            let shop = Shop {
                db: platform.db.clone(),
                config: config.clone(),
                payments,
                jobs: platform.jobs.clone(),
            };
            service::mail::register(&platform.jobs, platform.db.clone(), platform.mailer.clone());
            // The handlers' copy of the service enqueues through a queue that
            // does not own them (JobQueue::enqueuer): no cycle keeps the pool.
            let for_handlers = Shop {
                jobs: platform.jobs.enqueuer(),
                ..shop.clone()
            };
            for_handlers
                .register_expiry(&platform.jobs)
                .map_err(|e| anyhow::anyhow!("shop.reservation_sweep: {e}"))?;
            for_handlers
                .register_provider_event_prune(&platform.jobs)
                .map_err(|e| anyhow::anyhow!("{}: {e}", service::provider_webhooks::PRUNE_JOB))?;
            let webhooks = wire_merchant_webhooks(platform, &config)?;
            wiring.offer(shop.clone());
            wiring.offer(webhooks.clone());
            wiring.routes(routes::router(shop, webhooks));
            Ok(())
        })
    }
}

/// The merchant webhooks' parts: the delivery job's handler, and the
/// consumer of order events that fans them out to endpoints.
fn wire_merchant_webhooks(
    platform: &Platform,
    config: &ShopConfig,
) -> anyhow::Result<MerchantWebhooks> {
    let deliverer = Deliverer::new(platform.db.clone(), config.webhooks.clone())?;
    platform
        .jobs
        .register(merchant_webhooks::DELIVER_JOB, move |payload| {
            let deliverer = deliverer.clone();
            async move {
                let job: DeliverJob = serde_json::from_value(payload)
                    .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
                deliverer.attempt(job.delivery_id).await.map(|_| ())
            }
        });
    // The event bus keeps its consumers for the node's life; through a
    // queue that owns the handlers this would be a cycle keeping the pool
    // alive (JobQueue::enqueuer).
    let webhooks = MerchantWebhooks::new(
        platform.db.clone(),
        platform.jobs.enqueuer(),
        config.webhooks.clone(),
    );
    platform.events.subscribe(
        merchant_webhooks::CONSUMER,
        merchant_webhooks::ORDER_EVENTS,
        FanOut(webhooks.clone()),
    );
    Ok(webhooks)
}
