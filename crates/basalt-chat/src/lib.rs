//! The chat module: rooms (public, private, invite-only, direct), messages
//! with gapless per-room offsets, threads, reactions, mentions, history,
//! presence, typing and read state, over one WebSocket
//! (`docs/chat-protocol.md`) and a REST API, on one node or many.
//!
//! - [`service`]: every rule, whatever protocol asks;
//! - [`store`] (private): the tables;
//! - [`live`]: what is published to connections on every node, through the
//!   platform's broadcast port (in process, or Redis pub/sub);
//! - [`hub`]: this node's connections and topics;
//! - [`ws`]: the socket; [`routes`]: REST; [`frames`]: the socket's frames.
//!
//! Members and authors are identity accounts, found through
//! [`basalt_identity::service::IdentityService`]; the chat's tables refer to
//! them by id only.

pub mod config;
pub mod frames;
pub mod hub;
pub mod live;
pub mod metrics;
pub mod model;
pub mod routes;
pub mod service;
mod store;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use basalt_identity::service::IdentityService;
use basalt_platform::config::{Config, ConfigError};
use basalt_platform::db::MigrationFile;
use basalt_platform::module::Wiring;
use basalt_platform::supervisor::{BackgroundService, RunsOn, Stage};
use basalt_platform::{Module, Platform};
use futures_util::future::BoxFuture;

use crate::config::ChatConfig;
use crate::hub::Hub;
use crate::live::Live;
use crate::metrics::ChatMetrics;
use crate::service::Chat;

/// The configuration section's name.
pub const SECTION: &str = "chat";

/// How often each node compares its rooms' newest offsets with the
/// database (to deliver a message whose publish was lost).
const HEADS_SWEEP: Duration = Duration::from_secs(2);

/// The chat's migrations (versions 4000–4999).
pub static MIGRATIONS: &[MigrationFile] = &[MigrationFile {
    version: 4001,
    description: "create_chat",
    sqlite: include_str!("../migrations/sqlite/4001_create_chat.sql"),
    postgres: include_str!("../migrations/postgres/4001_create_chat.sql"),
}];

/// Reads and checks the `[chat]` section.
pub fn chat_config(config: &Config) -> Result<ChatConfig, ConfigError> {
    let section: ChatConfig = config.section(SECTION)?;
    section.validate().map_err(|problem| ConfigError {
        key: "BASALT_CHAT".into(),
        problem,
    })?;
    Ok(section)
}

/// The module, as listed by the binary.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChatModule;

impl Module for ChatModule {
    fn name(&self) -> &'static str {
        SECTION
    }

    fn migrations(&self) -> &'static [MigrationFile] {
        MIGRATIONS
    }

    fn config(&self, config: &Config) -> Result<Option<toml::Value>, ConfigError> {
        let section = chat_config(config)?;
        toml::Value::try_from(&section)
            .map(Some)
            .map_err(|e| ConfigError {
                key: "BASALT_CHAT".into(),
                problem: e.to_string(),
            })
    }

    fn wire<'a>(
        &'a self,
        platform: &'a Platform,
        wiring: &'a mut Wiring,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let identity = platform
                .services
                .require::<IdentityService>()
                .map_err(|e| e.context("the chat needs the identity module"))?;
            let config = Arc::new(chat_config(&platform.config)?);
            let live = Live::new(platform.broadcast.clone());
            let chat = Chat {
                db: platform.db.clone(),
                identity,
                config: config.clone(),
                limiter: platform.rate_limiter.clone(),
                live: live.clone(),
                presence: platform.presence.clone(),
            };
            let hub = Hub::new(live);
            let metrics = ChatMetrics::default();
            metrics.register(wiring.metrics());
            wiring.offer(chat.clone());
            wiring.routes(routes::router(chat.clone()));
            wiring.raw_routes(ws::router(ws::Sockets {
                chat: chat.clone(),
                hub: hub.clone(),
                metrics,
            }));
            background(wiring, &chat, &hub, platform.config.http.shutdown_grace());
            Ok(())
        })
    }
}

/// The chat's loops on API nodes: closing sockets at shutdown, the sweep of
/// rooms' newest offsets, and the presence sweep.
fn background(wiring: &mut Wiring, chat: &Chat, hub: &Hub, grace: Duration) {
    let sockets = hub.clone();
    // First stage: sockets close ("reconnect elsewhere") as soon as HTTP
    // has drained, while the database is still there for their last frames.
    wiring.background(BackgroundService::new(
        "chat.sockets",
        RunsOn::ApiNodes,
        Stage::Jobs,
        move |stop| async move {
            stop.cancelled().await;
            sockets.close_all(grace.min(Duration::from_secs(5))).await;
        },
    ));
    let (heads_hub, heads_chat) = (hub.clone(), chat.clone());
    wiring.background(BackgroundService::new(
        "chat.heads_sweep",
        RunsOn::ApiNodes,
        Stage::Jobs,
        move |stop| async move {
            let mut tick = tokio::time::interval(HEADS_SWEEP);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => heads_hub.sweep_heads(&heads_chat).await,
                }
            }
        },
    ));
    let presence_chat = chat.clone();
    let every = (chat.presence_ttl() / 3).max(Duration::from_secs(1));
    wiring.background(BackgroundService::new(
        "chat.presence_sweep",
        RunsOn::ApiNodes,
        Stage::Jobs,
        move |stop| async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => presence_chat.sweep_presence().await,
                }
            }
        },
    ));
}
