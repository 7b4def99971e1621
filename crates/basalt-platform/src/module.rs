//! The contract every domain module (identity, blog, and the chat, shop and
//! OAuth modules to come) implements to plug into the server: [`Module`],
//! with its two phases, [`Module::provide`] then [`Module::wire`].

use std::sync::Arc;

use axum::Router;
use futures_util::future::BoxFuture;
use prometheus_client::registry::Registry;
use utoipa_axum::router::OpenApiRouter;

use crate::config::{Config, ConfigError};
use crate::db::{Db, MigrationFile};
use crate::jobs::JobQueue;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::services::Services;
use crate::supervisor::BackgroundService;

/// The shared services a module builds itself from. Each port (cache, rate
/// limits, broadcast, presence, job queue, …) has an embedded and a
/// distributed adapter behind one trait, chosen by configuration.
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
    /// Fan-out of ephemeral payloads by topic to every node's subscribers
    /// (at most once; losses reported as gaps): in-process, or Redis
    /// pub/sub when `BASALT_REDIS_URL` is set.
    pub broadcast: Arc<dyn crate::broadcast::Broadcast>,
    /// Who is present, cluster-wide: keys with a status and a TTL, each
    /// expiry claimed by exactly one node: in-process, or in Redis when
    /// `BASALT_REDIS_URL` is set.
    pub presence: Arc<dyn crate::presence::Presence>,
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

/// A domain module: its name, configuration section and migrations, and the
/// two phases in which it plugs into the server.
///
/// # Phases
///
/// [`crate::App::build`] connects the database, applies every module's
/// [`migrations`](Module::migrations) (the [`config`](Module::config)
/// sections were checked before), builds the [`Platform`], then:
///
/// 1. **provide**: calls every module's [`provide`](Module::provide), in the
///    order of the list. A module builds its services here and offers them
///    to the others through [`Provide::service`]. It may not use another
///    module's services yet: [`Services::get`] finds nothing during this
///    phase, whatever the order.
/// 2. **wire**: once *every* module has provided, calls every module's
///    [`wire`](Module::wire). Now each service is in [`Platform::services`],
///    and the module hands its parts to the [`Wiring`]: documented and raw
///    routes, background services, metrics, readiness checks; it registers
///    its job handlers and recurring jobs on [`Platform::jobs`] and its
///    event consumers on [`Platform::events`], and hooks into other modules'
///    services (callbacks such as the identity module's `on_user_changed`).
///
/// Because no module can see another's services before all have provided,
/// the order of the module list does not matter.
///
/// Then the router is assembled from the wiring, and
/// [`crate::server::serve`] starts the background services the node's
/// [`crate::Role`] runs (under the [`crate::supervisor::Supervisor`]).
///
/// # CLI subcommands
///
/// Apart from the two phases, a module brings its own subcommands of the
/// `basalt` binary ([`commands`](Module::commands), each a
/// [`crate::commands::ModuleCommand`]: a `clap::Command` and how to run it).
/// They run with the configuration checked, before any phase; one that needs
/// services builds the app ([`crate::commands::CommandContext::app`]).
pub trait Module: Send + Sync + 'static {
    /// Short name, e.g. `identity`: also its configuration section and the
    /// prefix of its jobs, events and background services.
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

    /// Phase 1: builds the module's services from the platform alone and
    /// offers them to other modules ([`Provide::service`]). Runs before any
    /// module is wired; other modules' services are not available yet.
    fn provide<'a>(
        &'a self,
        platform: &'a Platform,
        provide: &'a mut Provide,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        let _ = (platform, provide);
        Box::pin(async { Ok(()) })
    }

    /// Phase 2: wires the module in, with every module's services available
    /// ([`Services::require`] on [`Platform::services`]): its routes,
    /// background services, metrics and readiness checks go to `wiring`;
    /// its job handlers, recurring jobs and event consumers to
    /// [`Platform::jobs`] and [`Platform::events`].
    ///
    /// Every module is wired whatever the node's role (job handlers and
    /// consumers are registered everywhere); the routes are mounted only on
    /// nodes that serve the API, and each background service runs on the
    /// roles it names.
    fn wire<'a>(
        &'a self,
        platform: &'a Platform,
        wiring: &'a mut Wiring,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        let _ = (platform, wiring);
        Box::pin(async { Ok(()) })
    }

    /// The module's CLI subcommands (`basalt user create` is identity's).
    /// They are offered beside the platform's own (`serve`, `migrate`,
    /// `config`, `jobs`); a name two modules (or a module and the platform)
    /// claim stops every command with a configuration error. A command runs
    /// with the configuration loaded and checked, outside the two phases:
    /// one that needs services builds the app
    /// ([`crate::commands::CommandContext::app`]).
    fn commands(&self) -> Vec<crate::commands::ModuleCommand> {
        Vec::new()
    }
}

/// What a module hands over in the provide phase: its services.
#[derive(Debug)]
pub struct Provide {
    services: Services,
    module: &'static str,
}

impl Provide {
    pub(crate) fn new(services: Services) -> Self {
        Self {
            services,
            module: "",
        }
    }

    pub(crate) fn set_module(&mut self, module: &'static str) {
        self.module = module;
    }

    /// Offers `service` to other modules, found by its type through
    /// [`Services::require`], and to every request (an extractor finds it in
    /// the request's extensions). One value per type: offering a type again
    /// replaces it.
    pub fn service<T: Clone + Send + Sync + 'static>(&mut self, service: T) -> &mut Self {
        tracing::debug!(
            module = self.module,
            service = std::any::type_name::<T>(),
            "service provided"
        );
        self.services.offer(service);
        self
    }
}

/// Whether a readiness check failing takes the node out of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Down: `/readyz` answers 503 (like the database).
    Required,
    /// Down: `/readyz` still answers 200, `degraded` (like Redis): the node
    /// serves, without what the dependency adds.
    Optional,
}

type Check = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// A module's readiness check, folded into `/readyz`.
#[derive(Clone)]
pub struct ReadinessCheck {
    /// The dependency's name in the `checks` list.
    pub name: &'static str,
    /// Whether it failing makes the node unready.
    pub readiness: Readiness,
    check: Check,
}

impl ReadinessCheck {
    /// Runs the check: `true` when the dependency is up.
    pub async fn is_up(&self) -> bool {
        (self.check)().await
    }
}

impl std::fmt::Debug for ReadinessCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadinessCheck")
            .field("name", &self.name)
            .field("readiness", &self.readiness)
            .finish_non_exhaustive()
    }
}

/// What modules hand over in the wire phase (see [`Module::wire`]).
///
/// - [`routes`](Wiring::routes): documented routes, an [`OpenApiRouter`]
///   whose handlers carry `#[utoipa::path]` annotations, so the module's
///   part of the OpenAPI document is generated from the code that serves
///   it; state applied already (each module keeps its own state type);
/// - [`raw_routes`](Wiring::raw_routes): routes left out of the OpenAPI
///   document (WebSocket upgrades); like documented routes, mounted only
///   on nodes that serve the API, behind the same middleware;
/// - [`background`](Wiring::background): long-running loops, each naming
///   the roles it runs on and its shutdown stage, run by the supervisor;
/// - [`metrics`](Wiring::metrics): a registry (prefix `basalt_`) exported
///   at `/metrics` with the platform's metrics;
/// - [`readiness`](Wiring::readiness): checks folded into `/readyz`.
///
/// Job handlers and recurring jobs go to [`Platform::jobs`], event
/// consumers to [`Platform::events`], in this same phase. GraphQL schema
/// parts are merged at compile time in the binary
/// (`crates/basalt/src/graphql.rs`), since async-graphql merges types by
/// derive; CLI subcommands come from [`Module::commands`].
pub struct Wiring {
    module: &'static str,
    /// Each module's documented routes, merged (and their schemas checked
    /// against each other's) when the router is built.
    routes: Vec<(&'static str, OpenApiRouter)>,
    dialects: crate::http::problems::ErrorDialects,
    offers: Vec<LateOffer>,
    raw_routes: Router,
    background: Vec<BackgroundService>,
    metrics: Registry,
    readiness: Vec<ReadinessCheck>,
}

impl std::fmt::Debug for Wiring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wiring")
            .field("module", &self.module)
            .field("background", &self.background)
            .field("readiness", &self.readiness)
            .finish_non_exhaustive()
    }
}

/// A service offered while wiring, added to the registry after it.
pub(crate) type LateOffer = Box<dyn FnOnce(&Services) + Send>;

/// Everything the modules wired, for assembling the app.
pub(crate) struct Wired {
    pub(crate) routes: Vec<(&'static str, OpenApiRouter)>,
    pub(crate) dialects: crate::http::problems::ErrorDialects,
    pub(crate) offers: Vec<LateOffer>,
    pub(crate) raw_routes: Router,
    pub(crate) background: Vec<BackgroundService>,
    pub(crate) metrics: Registry,
    pub(crate) readiness: Vec<ReadinessCheck>,
}

impl Wiring {
    pub(crate) fn new() -> Self {
        Self {
            module: "",
            routes: Vec::new(),
            dialects: Default::default(),
            offers: Vec::new(),
            raw_routes: Router::new(),
            background: Vec::new(),
            metrics: Registry::with_prefix("basalt"),
            readiness: Vec::new(),
        }
    }

    pub(crate) fn set_module(&mut self, module: &'static str) {
        self.module = module;
    }

    pub(crate) fn finish(self) -> Wired {
        Wired {
            routes: self.routes,
            dialects: self.dialects,
            offers: self.offers,
            raw_routes: self.raw_routes,
            background: self.background,
            metrics: self.metrics,
            readiness: self.readiness,
        }
    }

    /// The module being wired.
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// Adds documented routes (merged: paths must not clash with other
    /// modules').
    pub fn routes(&mut self, routes: OpenApiRouter) -> &mut Self {
        self.routes.push((self.module, routes));
        self
    }

    /// Offers a service built from other modules' services (so it cannot be
    /// offered in [`Module::provide`]), for other protocols and request
    /// handlers: it joins the registry once every module is wired, so no
    /// module can come to depend on the order of wiring by looking it up.
    pub fn offer<T: Clone + Send + Sync + 'static>(&mut self, service: T) -> &mut Self {
        self.offers.push(Box::new(move |services: &Services| {
            services.offer_after_wiring(service)
        }));
        self
    }

    /// Declares that errors under `prefix` which no handler of the module
    /// answers (404 for an unknown path, 405 for a method) are rendered in
    /// `dialect`, like the module's own: RealWorld front ends show them.
    pub fn error_dialect(
        &mut self,
        prefix: &str,
        dialect: crate::http::problems::ErrorDialect,
    ) -> &mut Self {
        self.dialects.add(prefix, dialect);
        self
    }

    /// Adds routes that stay out of the OpenAPI document (WebSocket
    /// upgrades, say).
    pub fn raw_routes(&mut self, routes: Router) -> &mut Self {
        let raw = std::mem::take(&mut self.raw_routes).merge(routes);
        self.raw_routes = raw;
        self
    }

    /// Adds a background service, started by [`crate::server::serve`] on
    /// the roles it names and stopped in its stage at shutdown (see
    /// [`crate::supervisor`]). Name it `module.what`.
    pub fn background(&mut self, service: BackgroundService) -> &mut Self {
        self.background.push(service);
        self
    }

    /// The registry for the module's metrics (prefix `basalt_`): register
    /// them here; `/metrics` exports them once the app is built.
    pub fn metrics(&mut self) -> &mut Registry {
        &mut self.metrics
    }

    /// Adds a readiness check, run on every `/readyz` with the platform's
    /// (at most 2 s each: a check that takes longer counts as down).
    pub fn readiness<F, Fut>(
        &mut self,
        name: &'static str,
        readiness: Readiness,
        check: F,
    ) -> &mut Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = bool> + Send + 'static,
    {
        self.readiness.push(ReadinessCheck {
            name,
            readiness,
            check: Arc::new(move || Box::pin(check())),
        });
        self
    }
}
