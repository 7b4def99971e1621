//! Assembling a running application from configuration and modules.

use std::sync::Arc;

use axum::Router;

use crate::broadcast::{Broadcast, BroadcastMetrics, InProcessBroadcast, RedisBroadcast};
use crate::cache::{Cache, InProcessCache, RedisCache};
use crate::config::Config;
use crate::db::{Db, MigrationReport, Migrations, apply_migrations};
use crate::jobs::JobQueue;
use crate::metrics::Metrics;
use crate::module::{Module, Platform, Provide, Wired, Wiring};
use crate::presence::{InProcessPresence, Presence, RedisPresence};
use crate::ratelimit::{InProcessRateLimiter, RateLimiter, RedisRateLimiter};
use crate::redis::Redis;
use crate::services::Services;
use crate::supervisor::{BackgroundService, RunsOn, Stage, Supervisor};

/// A built application: its shared services, router and API document.
pub struct App {
    /// Shared services (configuration, database, metrics).
    pub platform: Platform,
    /// The complete router with its middleware.
    pub router: Router,
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
            "Cache lookups by result and, for hits, the layer that answered",
            cache_lookups.clone(),
        );
        let broadcast_metrics = BroadcastMetrics::default();
        broadcast_metrics.register(metrics.registry_mut());
        let broadcast_capacity = crate::broadcast::DEFAULT_CAPACITY;
        // Each adapter's background loops, when it has any.
        let mut port_services: Vec<BackgroundService>;
        let (cache, rate_limiter, broadcast, presence, redis) = match &config.redis_url {
            None => {
                let broadcast = InProcessBroadcast::new(broadcast_capacity, broadcast_metrics);
                port_services = broadcast.background_services();
                (
                    Arc::new(InProcessCache::new(
                        10_000,
                        crate::cache::DEFAULT_MAX_BYTES,
                        cache_lookups,
                    )) as Arc<dyn Cache>,
                    Arc::new(InProcessRateLimiter::new()) as Arc<dyn RateLimiter>,
                    Arc::new(broadcast) as Arc<dyn Broadcast>,
                    Arc::new(InProcessPresence::new()) as Arc<dyn Presence>,
                    None,
                )
            }
            Some(url) => {
                let redis_up = prometheus_client::metrics::gauge::Gauge::default();
                metrics.registry_mut().register(
                    "redis_up",
                    "Whether the last Redis command succeeded (1) or failed (0)",
                    redis_up.clone(),
                );
                let redis = Redis::connect_lazily(url, &config.redis.key_prefix, redis_up)?;
                if !redis.ping(std::time::Duration::from_secs(2)).await {
                    tracing::warn!("Redis does not answer yet; starting degraded");
                }
                let cache = RedisCache::new(
                    redis.clone(),
                    config.redis.local_cache_entries,
                    cache_lookups,
                );
                port_services = cache.background_services();
                let broadcast =
                    RedisBroadcast::new(redis.clone(), broadcast_capacity, broadcast_metrics);
                port_services.extend(broadcast.background_services());
                (
                    Arc::new(cache) as Arc<dyn Cache>,
                    Arc::new(RedisRateLimiter::new(
                        redis.clone(),
                        config.redis.rate_limit_fail_mode,
                    )) as Arc<dyn RateLimiter>,
                    Arc::new(broadcast) as Arc<dyn Broadcast>,
                    Arc::new(RedisPresence::new(redis.clone())) as Arc<dyn Presence>,
                    Some(redis),
                )
            }
        };
        let event_metrics = crate::events::EventMetrics::default();
        {
            let registry = metrics.registry_mut();
            registry.register(
                "outbox_pending",
                "Domain events recorded and not yet published",
                event_metrics.outbox_pending.clone(),
            );
            registry.register(
                "outbox_lag_seconds",
                "Age of the oldest unpublished domain event",
                event_metrics.outbox_lag_seconds.clone(),
            );
            registry.register(
                "broker_up",
                "Whether the event broker answers (1) or not (0); 1 for the in-process bus",
                event_metrics.broker_up.clone(),
            );
        }
        let jobs = JobQueue::new(db.clone(), config.jobs.clone());
        jobs.register_metrics(metrics.registry_mut());
        let metrics = Arc::new(metrics);
        let events = crate::events::Events::new(
            db.clone(),
            config.events.clone(),
            config.amqp_url.clone(),
            event_metrics,
        );
        let mailer = crate::mail::mailer_for(&config)?;
        crate::mail::register_send_email(&jobs, mailer.clone());
        crate::http::idempotency::register_purge(&jobs, db.clone());
        let platform = Platform {
            config: Arc::new(config),
            db,
            metrics,
            jobs,
            mailer,
            rate_limiter,
            cache,
            broadcast,
            presence,
            redis,
            events,
            services: Services::default(),
            background: Default::default(),
            supervisor: Supervisor::new(),
        };
        for service in port_services {
            platform.supervisor.register(service);
        }
        register_platform_services(&platform);
        let wired = assemble(&platform, &modules).await?;
        for offer in wired.offers {
            offer(&platform.services);
        }
        platform.metrics.add_module_metrics(wired.metrics);
        for service in wired.background {
            platform.supervisor.register(service);
        }
        let router = crate::http::build_router(
            &platform,
            wired.routes,
            wired.raw_routes,
            wired.readiness,
            wired.dialects,
        )?;
        Ok(Self { platform, router })
    }
}

/// Runs the two module phases (see [`Module`]): every module provides, then
/// every module is wired.
async fn assemble(platform: &Platform, modules: &[Box<dyn Module>]) -> anyhow::Result<Wired> {
    let starting = |module: &dyn Module, phase: &str| {
        let name = module.name();
        let phase = phase.to_owned();
        move |e: anyhow::Error| e.context(format!("cannot start module `{name}` ({phase})"))
    };
    platform.services.begin_providing();
    let mut provide = Provide::new(platform.services.clone());
    for module in modules {
        provide.set_module(module.name());
        module
            .provide(platform, &mut provide)
            .await
            .map_err(starting(module.as_ref(), "provide"))?;
    }
    platform.services.seal();
    let mut wiring = Wiring::new();
    for module in modules {
        wiring.set_module(module.name());
        module
            .wire(platform, &mut wiring)
            .await
            .map_err(starting(module.as_ref(), "wire"))?;
    }
    Ok(wiring.finish())
}

/// The platform's own background services: the job workers (with their
/// helpers) and the outbox relay, on nodes that run background work, and
/// the live-event fan-out, on nodes that serve the API. They
/// start in [`crate::server::serve`], after every module is wired, so they
/// see every job handler, schedule and consumer.
fn register_platform_services(platform: &Platform) {
    let grace = platform.config.http.shutdown_grace();
    if platform.config.jobs.workers > 0 {
        let jobs = platform.jobs.clone();
        platform.supervisor.register(BackgroundService::new(
            "jobs.workers",
            RunsOn::Workers,
            Stage::Jobs,
            move |stop| async move {
                let workers = jobs.start();
                stop.cancelled().await;
                // Running jobs get the grace; unfinished ones go back to the queue.
                workers.shutdown(grace).await;
            },
        ));
    }
    // The relay depends on the role alone: `jobs.workers = 0` means "run no
    // jobs here", not "keep this node's events in the outbox". (It used to
    // turn the relay off too, which left a single node with no workers
    // silently never publishing.) The relay publishes to consumers; jobs
    // they enqueue wait for a node with workers.
    let events = platform.events.clone();
    platform.supervisor.register(BackgroundService::new(
        "events.relay",
        RunsOn::Workers,
        Stage::Events,
        move |stop| async move {
            let relay = events.start();
            stop.cancelled().await;
            relay.shutdown(grace).await;
        },
    ));
    // Live events (`Events::listen`) are for what the API serves
    // (subscriptions), so they are heard where the API is served.
    let events = platform.events.clone();
    platform.supervisor.register(BackgroundService::new(
        "events.fanout",
        RunsOn::ApiNodes,
        Stage::Events,
        move |stop| events.fan_out(stop),
    ));
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

/// The platform's event outbox and inbox.
pub const EVENTS_MIGRATIONS: Migrations = Migrations {
    module: "platform",
    files: crate::events::MIGRATIONS,
};

/// The platform's idempotency keys (`http::idempotency`).
pub const IDEMPOTENCY_MIGRATIONS: Migrations = Migrations {
    module: "platform",
    files: crate::http::idempotency::MIGRATIONS,
};

fn migrations_of(modules: &[Box<dyn Module>]) -> Vec<Migrations> {
    [
        PLATFORM_MIGRATIONS,
        EVENTS_MIGRATIONS,
        IDEMPOTENCY_MIGRATIONS,
    ]
    .into_iter()
    .chain(modules.iter().map(|m| Migrations {
        module: m.name(),
        files: m.migrations(),
    }))
    .collect()
}
