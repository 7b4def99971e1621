//! GraphQL beside REST: the endpoint every module's part of the schema is
//! served through.
//!
//! Modules own their GraphQL types (the blog's `Article`, identity's
//! `viewer`), written with async-graphql's derives; the binary merges them
//! into one schema (`crates/basalt/src/graphql.rs`) and mounts it here:
//!
//! - `POST /graphql` runs any operation; `GET /graphql` runs queries only (a
//!   mutation over GET is refused with 405, so that no link or `<img>` can
//!   change anything); a WebSocket upgrade on `/graphql` runs subscriptions,
//!   over `graphql-transport-ws` or the legacy `graphql-ws`, chosen by
//!   subprotocol ([`ws`]).
//! - `GET /graphiql` serves GraphiQL, vendored into the binary ([`graphiql`]).
//!
//! Resolvers call the same services as the REST handlers, with the same
//! credentials: [`Prepare`] (implemented by the binary over the identity
//! module) turns a request's bearer token or session cookie into
//! request data, with the same CSRF and Origin rules as REST.
//!
//! Every request is bounded before any resolver runs ([`limits`]): query
//! size, aliases, depth and complexity. Failures are classified once: a
//! module's error becomes a [`Failure`], and [`classify`] renders it as a
//! GraphQL error with a stable `extensions.code`.

pub mod classify;
mod config;
pub mod graphiql;
mod http;
pub mod limits;
pub mod metrics;
pub mod persisted;
pub mod scalars;
pub mod ws;

use std::sync::Arc;

use async_graphql::{Data, Executor, ObjectType, SchemaBuilder, SubscriptionType};
use axum::Router;
use axum::http::request::Parts;
use futures_util::future::BoxFuture;

pub use config::GraphQlConfig;

use crate::cache::Cache;
use crate::error::Failure;

/// Most directives on one field.
const MAX_DIRECTIVES_PER_FIELD: usize = 8;

/// Where the endpoint is mounted.
pub const ENDPOINT: &str = "/graphql";

/// What a GraphQL request is about to do, which decides the credential
/// rules: a cookie-authenticated [`Access::Write`] needs the CSRF token and
/// an allowed Origin, like a REST write; a cookie-authenticated
/// [`Access::Subscribe`] needs an allowed Origin (a browser sends no custom
/// header with a WebSocket upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A query.
    Read,
    /// A mutation.
    Write,
    /// A subscription, authenticated when the WebSocket is opened.
    Subscribe,
}

/// Turns a request's credentials into request data for resolvers (who is
/// calling, per-request batch loaders), or refuses it. Implemented once, by
/// the binary, for every module's part of the schema.
pub trait Prepare: Send + Sync + 'static {
    /// Fills `data` for one operation. `parts` are the HTTP request's (for a
    /// subscription: the upgrade request's, with an `Authorization` header
    /// added from the `connection_init` payload when it carries one).
    fn prepare<'a>(
        &'a self,
        parts: &'a Parts,
        access: Access,
        data: &'a mut Data,
    ) -> BoxFuture<'a, Result<(), Failure>>;
}

/// The schema's limits and extensions from configuration: depth,
/// complexity, introspection, and the classification of every error.
pub fn configure<Q, M, S>(
    builder: SchemaBuilder<Q, M, S>,
    config: &GraphQlConfig,
) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let builder = builder
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity)
        .limit_recursive_depth(config.max_depth.saturating_mul(2).max(32))
        // Directives repeated on one field cost the parser and validator
        // without bound otherwise.
        .limit_directives(MAX_DIRECTIVES_PER_FIELD)
        .extension(limits::Limits::from(config))
        .extension(classify::Classify);
    if config.introspection {
        builder
    } else {
        builder.disable_introspection()
    }
}

/// The routes: `/graphql` (POST, GET and the WebSocket upgrade) and
/// `/graphiql`. Persisted queries are kept in `cache`, shared by every node
/// when it is the Redis one; subscriptions end when `stop` is cancelled (the
/// supervisor's signal); operations are counted in `metrics`.
pub fn router<E>(
    executor: E,
    prepare: Arc<dyn Prepare>,
    config: &GraphQlConfig,
    cache: Arc<dyn Cache>,
    stop: tokio_util::sync::CancellationToken,
    metrics: metrics::GraphQlMetrics,
) -> Router
where
    E: Executor + Clone,
{
    let endpoint = Arc::new(http::Endpoint {
        executor,
        prepare,
        persisted: config
            .persisted_queries
            .then(|| persisted::PersistedQueries::new(cache)),
        limits: limits::Limits::from(config),
        max_query_bytes: config.max_query_bytes,
        stop,
        metrics,
    });
    Router::new()
        .route(
            ENDPOINT,
            axum::routing::post(http::post::<E>).get(http::get::<E>),
        )
        .with_state(endpoint)
        .merge(graphiql::router(ENDPOINT))
}
