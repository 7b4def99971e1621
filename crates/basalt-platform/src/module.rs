//! The contract every domain module (identity, blog, tasks, chat, shop)
//! implements to plug into the server.

use std::sync::Arc;

use utoipa_axum::router::OpenApiRouter;

use crate::config::Config;
use crate::db::{Db, MigrationFile};
use crate::metrics::Metrics;

/// The shared services a module builds itself from. Later ports (cache, job
/// queue, event bus) are added here, each with its embedded and its
/// distributed adapter behind one trait.
#[derive(Debug, Clone)]
pub struct Platform {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
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

    /// The module's HTTP routes.
    fn routes(&self, platform: &Platform) -> anyhow::Result<OpenApiRouter> {
        let _ = platform;
        Ok(OpenApiRouter::new())
    }
}
