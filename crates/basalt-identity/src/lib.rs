//! The identity module, part 1: Basalt's own accounts and how they sign in.
//!
//! - accounts with argon2id passwords ([`passwords`]), roles, email
//!   verification and password reset through mailed tokens;
//! - browser sessions: an opaque cookie, server-side state behind
//!   [`store::sessions::SessionStore`], CSRF protection ([`auth`]);
//! - API tokens: short-lived EdDSA JWTs ([`tokens`]) and rotated, single-use
//!   refresh tokens with reuse detection;
//! - rate limits, lockout and an audit log of security events.
//!
//! Other modules authenticate callers with the [`auth::Authenticated`],
//! [`auth::MaybeAuthenticated`] and [`auth::Admin`] extractors, and reach
//! accounts through [`service::IdentityService`], found in the platform's
//! service registry.

pub mod auth;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod error;
pub mod graphql;
pub mod model;
pub mod passwords;
pub mod routes;
pub mod service;
mod store;
pub mod tokens;

use std::sync::Arc;

use basalt_platform::config::{Config, ConfigError};
use basalt_platform::db::MigrationFile;
use basalt_platform::module::{Provide, Wiring};
use basalt_platform::supervisor::{BackgroundService, RunsOn, Stage};
use basalt_platform::{Module, Platform};
use futures_util::future::BoxFuture;

use crate::config::IdentityConfig;
use crate::config::SessionStoreKind;
use crate::passwords::Passwords;
use crate::service::{IdentityService, Parts, WebSettings};
use crate::store::redis_sessions::RedisSessionStore;
use crate::store::sessions::DbSessionStore;
use crate::tokens::jwt::TokenIssuer;
use crate::tokens::keys::SigningKeys;

/// The configuration section's name.
pub const SECTION: &str = "identity";

/// Audience of Basalt's access tokens.
pub const AUDIENCE: &str = "basalt";

macro_rules! migration {
    ($version:literal, $name:literal) => {
        MigrationFile {
            version: $version,
            description: $name,
            sqlite: include_str!(concat!(
                "../migrations/sqlite/",
                $version,
                "_",
                $name,
                ".sql"
            )),
            postgres: include_str!(concat!(
                "../migrations/postgres/",
                $version,
                "_",
                $name,
                ".sql"
            )),
        }
    };
}

/// The identity module's migrations (versions 2000–2999).
pub static MIGRATIONS: &[MigrationFile] = &[
    migration!(2001, "create_users"),
    migration!(2002, "create_sessions"),
    migration!(2003, "create_refresh_tokens"),
    migration!(2004, "create_email_tokens"),
    migration!(2005, "create_audit_log"),
    migration!(2006, "create_signing_keys"),
    migration!(2007, "add_token_generation"),
    migration!(2008, "add_email_token_id"),
    migration!(2009, "add_refresh_token_parent"),
];

/// The module, as listed by the binary.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityModule;

/// Reads and checks the `[identity]` section.
pub fn identity_config(config: &Config) -> Result<IdentityConfig, ConfigError> {
    let section: IdentityConfig = config.section(SECTION)?;
    section.validate().map_err(|problem| ConfigError {
        key: "BASALT_IDENTITY".into(),
        problem,
    })?;
    Ok(section)
}

/// The token issuer name: the public URL, or a stable local default.
fn issuer_name(config: &Config) -> String {
    config.public_url.as_ref().map_or_else(
        || "basalt".to_owned(),
        |u| u.as_str().trim_end_matches('/').to_owned(),
    )
}

/// Builds the service from the platform (also used by the CLI).
pub async fn build_service(platform: &Platform) -> anyhow::Result<IdentityService> {
    let config = identity_config(&platform.config)?;
    let passwords = Passwords::new(config.passwords.clone())?;
    let keys = SigningKeys::load_or_create_with(&platform.db, config.key_options()).await?;
    let issuer = TokenIssuer::new(
        keys.clone(),
        issuer_name(&platform.config),
        AUDIENCE.into(),
        config.access_token_ttl(),
    );
    let web = WebSettings {
        public_url: platform
            .config
            .public_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned()),
        https: platform.config.is_https(),
        trusted_origins: platform
            .config
            .cors_origins
            .iter()
            .filter_map(|o| o.to_str().ok().map(str::to_owned))
            .collect(),
    };
    Ok(IdentityService::new(Parts {
        db: platform.db.clone(),
        sessions: match (config.session_store, &platform.redis) {
            (SessionStoreKind::Database, _) => Arc::new(DbSessionStore::new(platform.db.clone())),
            (SessionStoreKind::Redis, Some(redis)) => {
                Arc::new(RedisSessionStore::new(redis.clone()))
            }
            (SessionStoreKind::Redis, None) => anyhow::bail!(
                "BASALT_IDENTITY__SESSION_STORE is redis, but BASALT_REDIS_URL is not set"
            ),
        },
        config,
        passwords,
        keys,
        issuer,
        jobs: platform.jobs.clone(),
        events: platform.events.waker(),
        rate_limiter: platform.rate_limiter.clone(),
        web,
        background: platform.background.clone(),
        cache: platform.cache.clone(),
    }))
}

impl Module for IdentityModule {
    fn name(&self) -> &'static str {
        SECTION
    }

    fn migrations(&self) -> &'static [MigrationFile] {
        MIGRATIONS
    }

    fn config(&self, config: &Config) -> Result<Option<toml::Value>, ConfigError> {
        Config::printable("BASALT_IDENTITY", &identity_config(config)?)
    }

    /// `basalt user create` and `basalt keys rotate`.
    fn commands(&self) -> Vec<basalt_platform::commands::ModuleCommand> {
        commands::commands()
    }

    /// Builds the [`IdentityService`] (loading or creating the signing
    /// keys) and offers it.
    fn provide<'a>(
        &'a self,
        platform: &'a Platform,
        provide: &'a mut Provide,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            provide.service(build_service(platform).await?);
            Ok(())
        })
    }

    /// Housekeeping and mail jobs, the signing-key refresh (on every node:
    /// every node verifies tokens) and the routes.
    fn wire<'a>(
        &'a self,
        platform: &'a Platform,
        wiring: &'a mut Wiring,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let service = platform.services.require::<IdentityService>()?;
            service.schedule_housekeeping(&platform.jobs)?;
            service.register_mail_jobs(&platform.jobs, platform.mailer.clone());
            let keys = service.keys().clone();
            wiring.background(BackgroundService::new(
                "identity.signing_key_refresh",
                RunsOn::EveryNode,
                Stage::Support,
                move |stop| keys.refresh_until(stop),
            ));
            wiring.routes(routes::router(service));
            Ok(())
        })
    }
}
