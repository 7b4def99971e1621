//! The contract every domain module (identity, blog, tasks, chat, shop)
//! implements to plug into the server.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use utoipa_axum::router::OpenApiRouter;

use crate::config::{Config, ConfigError};
use crate::db::{Db, MigrationFile};
use crate::jobs::JobQueue;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::services::Services;

/// The shared services a module builds itself from. Each port (cache, rate
/// limits, job queue, …) has an embedded and a distributed adapter behind one
/// trait, chosen by configuration.
#[derive(Clone)]
pub struct Platform {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Durable background jobs.
    pub jobs: JobQueue,
    /// Outgoing mail (use through the job queue: [`crate::mail::email_job`]).
    pub mailer: Arc<dyn Mailer>,
    /// Rate limits.
    pub rate_limiter: Arc<dyn RateLimiter>,
    /// Cache for data many requests share.
    pub cache: Arc<dyn crate::cache::Cache>,
    /// The Redis connection, when `BASALT_REDIS_URL` is set: for modules'
    /// own Redis adapters (sessions) and the readiness probe.
    pub redis: Option<crate::redis::Redis>,
    /// Domain events: record them in a transaction, subscribe consumers.
    pub events: crate::events::Events,
    /// Services modules offer each other.
    pub services: Services,
    /// Work handed off by requests, which shutdown waits for.
    pub background: crate::background::BackgroundTasks,
    /// Every long-running background loop of the node, stopped in order at
    /// shutdown.
    pub supervisor: crate::supervisor::Supervisor,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("config", &self.config)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// A domain module: its name, its migrations and its routes.
///
/// Routes come back as an [`OpenApiRouter`] whose handlers carry
/// `#[utoipa::path]` annotations, so the module's part of the OpenAPI
/// document is generated from the same code that serves it. The router has
/// its state applied already: each module keeps its own state type.
pub trait Module: Send + Sync + 'static {
    /// Short name, e.g. `identity`.
    fn name(&self) -> &'static str;

    /// The module's migrations, both dialects each (see [`crate::db::Migrations`]).
    fn migrations(&self) -> &'static [MigrationFile] {
        &[]
    }

    /// Validates the module's configuration section and returns it as
    /// resolved (defaults filled in, secrets redacted) for `basalt config
    /// print`. Called at start-up, so a bad value exits with code 2.
    fn config(&self, config: &Config) -> Result<Option<toml::Value>, ConfigError> {
        let _ = config;
        Ok(None)
    }

    /// Builds the module: its services (offered to other modules through
    /// [`Platform::services`]), its job handlers (on [`Platform::jobs`]) and
    /// its HTTP routes.
    fn routes<'a>(
        &'a self,
        platform: &'a Platform,
    ) -> BoxFuture<'a, anyhow::Result<OpenApiRouter>> {
        let _ = platform;
        Box::pin(async { Ok(OpenApiRouter::new()) })
    }
}
