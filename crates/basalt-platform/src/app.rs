//! Assembling a running application from configuration and modules.

use std::sync::Arc;

use axum::Router;
use utoipa::openapi::OpenApi as OpenApiDoc;

use crate::config::Config;
use crate::db::{Db, MigrationReport, Migrations, apply_migrations};
use crate::jobs::JobQueue;
use crate::metrics::Metrics;
use crate::module::{Module, Platform};
use crate::ratelimit::InProcessRateLimiter;
use crate::services::Services;

/// A built application: its shared services, router and API document.
pub struct App {
    /// Shared services (configuration, database, metrics).
    pub platform: Platform,
    /// The complete router with its middleware.
    pub router: Router,
    /// The generated OpenAPI document.
    pub openapi: OpenApiDoc,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Connects to the database, applies migrations when configured to, and
    /// builds the router.
    pub async fn build(config: Config, modules: Vec<Box<dyn Module>>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create data folder {}: {e}",
                config.data_dir.display()
            )
        })?;
        let db = Db::connect(&config.database_url, &config.database).await?;
        if config.database.migrate_on_start {
            let report = apply_migrations(&db, &migrations_of(&modules)).await?;
            tracing::info!(
                applied = report.applied.len(),
                known = report.known,
                backend = db.backend().name(),
                "database schema up to date"
            );
        }
        let mut metrics = Metrics::new(db.backend().name());
        let cache_lookups = prometheus_client::metrics::family::Family::default();
        metrics.registry_mut().register(
            "cache_lookups",
            "Cache lookups by result",
            cache_lookups.clone(),
        );
        let metrics = Arc::new(metrics);
        let jobs = JobQueue::new(db.clone(), config.jobs.clone());
        let mailer = crate::mail::mailer_for(&config)?;
        crate::mail::register_send_email(&jobs, mailer.clone());
        let platform = Platform {
            config: Arc::new(config),
            db,
            metrics,
            jobs,
            mailer,
            rate_limiter: Arc::new(InProcessRateLimiter::new()),
            cache: Arc::new(crate::cache::InProcessCache::new(10_000, cache_lookups)),
            services: Services::default(),
        };
        let (router, openapi) = crate::http::build_router(&platform, &modules).await?;
        Ok(Self {
            platform,
            router,
            openapi,
        })
    }
}

/// Applies pending migrations of all modules (the `basalt migrate` command).
pub async fn migrate(
    config: &Config,
    modules: &[Box<dyn Module>],
) -> anyhow::Result<MigrationReport> {
    let db = Db::connect(&config.database_url, &config.database).await?;
    let report = apply_migrations(&db, &migrations_of(modules)).await;
    db.close().await;
    Ok(report?)
}

/// The platform's own migrations (job queue), applied before any module's.
pub const PLATFORM_MIGRATIONS: Migrations = Migrations {
    module: "platform",
    files: crate::jobs::MIGRATIONS,
};

fn migrations_of(modules: &[Box<dyn Module>]) -> Vec<Migrations> {
    std::iter::once(PLATFORM_MIGRATIONS)
        .chain(modules.iter().map(|m| Migrations {
            module: m.name(),
            files: m.migrations(),
        }))
        .collect()
}
