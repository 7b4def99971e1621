//! The GraphQL schema of this build: every module's part, merged, and the
//! module that serves it at `/graphql` (see `basalt_platform::graphql`).
//!
//! async-graphql composes types at compile time, so the parts are listed
//! here, beside [`crate::modules`]: a module that brings GraphQL types adds
//! its query, mutation and subscription parts to the three lists below, and
//! its per-request data to [`BasaltPrepare`].

use std::sync::Arc;

use async_graphql::{Data, MergedObject, MergedSubscription, Schema, SchemaBuilder};
use axum::http::request::Parts;
use basalt_platform::config::{Config, ConfigError};
use basalt_platform::error::Failure;
use basalt_platform::graphql::{self as endpoint, Access, GraphQlConfig, Prepare};
use basalt_platform::module::Wiring;
use basalt_platform::{Module, Platform};
use futures_util::future::BoxFuture;

/// Every module's queries.
#[derive(MergedObject, Default)]
pub struct Query(
    basalt_identity::graphql::IdentityQuery,
    basalt_blog::graphql::BlogQuery,
    basalt_chat::graphql::ChatQuery,
    basalt_shop::graphql::ShopQuery,
);

/// Every module's mutations.
#[derive(MergedObject, Default)]
pub struct Mutation(
    basalt_blog::graphql::BlogMutation,
    basalt_chat::graphql::ChatMutation,
    basalt_shop::graphql::ShopMutation,
);

/// Every module's subscriptions.
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    basalt_blog::graphql::BlogSubscription,
    basalt_chat::graphql::ChatSubscription,
);

/// The schema served at `/graphql`.
pub type BasaltSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
}

/// The schema's SDL (`basalt graphql schema`), as served.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// The credentials and per-request data of every module's part.
struct BasaltPrepare;

impl Prepare for BasaltPrepare {
    fn prepare<'a>(
        &'a self,
        parts: &'a Parts,
        access: Access,
        data: &'a mut Data,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            basalt_identity::graphql::prepare(parts, access, data).await?;
            basalt_blog::graphql::prepare(parts, data)?;
            basalt_chat::graphql::prepare(parts, data)?;
            basalt_shop::graphql::prepare(parts, data)?;
            Ok(())
        })
    }
}

const SECTION: &str = "graphql";

fn graphql_config(config: &Config) -> Result<GraphQlConfig, ConfigError> {
    let section: GraphQlConfig = config.section(SECTION)?;
    section.check().map_err(|(key, problem)| ConfigError {
        key: format!("{SECTION}.{key}"),
        problem: problem.into(),
    })?;
    Ok(section)
}

/// Serves the merged schema: `/graphql` and `/graphiql`, with the
/// `[graphql]` section's limits.
#[derive(Debug, Default, Clone, Copy)]
pub struct GraphQlModule;

impl Module for GraphQlModule {
    fn name(&self) -> &'static str {
        SECTION
    }

    fn config(&self, config: &Config) -> Result<Option<toml::Value>, ConfigError> {
        Config::printable(SECTION, &graphql_config(config)?)
    }

    /// `basalt graphql schema`: the SDL, as served.
    fn commands(&self) -> Vec<basalt_platform::commands::ModuleCommand> {
        let graphql = clap::Command::new("graphql")
            .about("The GraphQL API")
            .subcommand_required(true)
            .subcommand(
                clap::Command::new("schema")
                    .about("Print the schema served at /graphql, in GraphQL SDL"),
            );
        vec![basalt_platform::commands::ModuleCommand::new(
            graphql,
            |_| async {
                print!("{}", sdl());
                Ok(())
            },
        )]
    }

    fn wire<'a>(
        &'a self,
        platform: &'a Platform,
        wiring: &'a mut Wiring,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let config = graphql_config(&platform.config)?;
            let schema: BasaltSchema = endpoint::configure(builder(), &config)
                .data(platform.events.clone())
                .finish();
            let metrics = endpoint::metrics::GraphQlMetrics::registered(wiring.metrics());
            let router = endpoint::router(
                schema,
                Arc::new(BasaltPrepare),
                &config,
                platform.cache.clone(),
                platform.supervisor.token(),
                metrics,
            );
            // `Idempotency-Key` on `POST /graphql`: the shop's store and
            // caller scope, so a keyed operation (the shop's `checkout` and
            // `refundOrder` require one) is answered once and replayed.
            let shop = basalt_shop::shop_config(&platform.config)?;
            let idempotency =
                basalt_shop::idempotency::idempotency(platform.db.clone(), &shop.idempotency);
            wiring.raw_routes(idempotency.wrap_router(router));
            Ok(())
        })
    }
}
