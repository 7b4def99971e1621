//! The blog module: the complete RealWorld ("Conduit") API, so that any
//! RealWorld front end works against Basalt, plus sanitised Markdown
//! rendering (through `basalt-markdown`, shared with the chat) and Atom/RSS
//! feeds.
//!
//! RealWorld users are identity accounts: sign-up, sign-in, profiles and
//! tokens go through [`basalt_identity::service::IdentityService`], found
//! in the platform's service registry. The blog's own tables hold articles,
//! tags, favourites, follows and comments, and refer to accounts by id only.

pub mod error;
pub mod events;
pub mod extract;
pub mod feeds;
pub mod graphql;
pub mod model;
pub mod pages;
pub mod routes;
pub mod service;
pub mod slug;
mod store;

use basalt_identity::service::IdentityService;
use basalt_platform::db::MigrationFile;
use basalt_platform::http::problems::ErrorDialect;
use basalt_platform::module::Wiring;
use basalt_platform::{Module, Platform};
use futures_util::future::BoxFuture;

use crate::service::Blog;

/// The blog's migrations (versions 3000–3999).
pub static MIGRATIONS: &[MigrationFile] = &[MigrationFile {
    version: 3001,
    description: "create_blog",
    sqlite: include_str!("../migrations/sqlite/3001_create_blog.sql"),
    postgres: include_str!("../migrations/postgres/3001_create_blog.sql"),
}];

/// Where the RealWorld API's routes live: errors under these paths take the
/// RealWorld shape, the fallbacks' 404 and 405 too.
pub const REALWORLD_ROUTE_SPACE: &[&str] = &[
    "/api/articles",
    "/api/users",
    "/api/user",
    "/api/profiles",
    "/api/tags",
];

/// The module, as listed by the binary. It uses the identity module's
/// service, in any order of the list: services are looked up only once
/// every module has provided its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct BlogModule;

impl Module for BlogModule {
    fn name(&self) -> &'static str {
        "blog"
    }

    fn migrations(&self) -> &'static [MigrationFile] {
        MIGRATIONS
    }

    /// The blog offers no services; everything happens in [`Module::wire`],
    /// where the identity module's service is available.
    fn wire<'a>(
        &'a self,
        platform: &'a Platform,
        wiring: &'a mut Wiring,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let identity = platform
                .services
                .require::<IdentityService>()
                .map_err(|e| e.context("the blog needs the identity module"))?;
            // Author names and avatars appear in cached pages: a profile change
            // in the identity module invalidates them before it is reported.
            let cache = platform.cache.clone();
            identity.on_user_changed(std::sync::Arc::new(move |_| {
                let cache = cache.clone();
                Box::pin(async move { cache.invalidate(service::CACHE_NAMESPACE).await })
            }));
            platform.events.subscribe(
                events::NOTIFY_FOLLOWERS,
                &[events::ARTICLE_PUBLISHED],
                events::NotifyFollowers {
                    identity: identity.clone(),
                    jobs: platform.jobs.clone(),
                    public_url: platform
                        .config
                        .public_url
                        .as_ref()
                        .map(|u| u.as_str().trim_end_matches('/').to_owned()),
                },
            );
            let blog = Blog {
                db: platform.db.clone(),
                identity,
                cache: platform.cache.clone(),
                flights: Default::default(),
                events: platform.events.waker(),
            };
            // Offered to other modules and protocols (a GraphQL schema, say),
            // which call the same rules as the REST handlers. It is built
            // from identity's service, so it is offered once wiring is done.
            wiring.offer(blog.clone());
            wiring.routes(routes::router(blog));
            // RealWorld front ends show a 404 or 405 only in their own shape.
            for prefix in REALWORLD_ROUTE_SPACE {
                wiring.error_dialect(prefix, ErrorDialect::RealWorld);
            }
            Ok(())
        })
    }
}
