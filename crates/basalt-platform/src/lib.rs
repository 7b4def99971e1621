//! The Basalt platform: everything a domain module stands on.
//!
//! - [`config`]: one typed configuration, layered from defaults, a TOML file
//!   and the environment;
//! - [`db`]: SQLite or PostgreSQL behind one handle, queries written once,
//!   migrations registered per module;
//! - [`http`]: the middleware stack (request id, logs, metrics, security
//!   headers, CORS, limits), health probes, metrics and API docs;
//! - [`error`]: the HTTP error type and RFC 9457 problem documents;
//! - [`module`]: the contract a domain module implements, and [`services`],
//!   through which modules offer services to each other;
//! - [`cache`], [`jobs`], [`mail`], [`ratelimit`], [`broadcast`],
//!   [`presence`]: caching, durable background jobs, outgoing mail, rate
//!   limits, node-to-node fan-out and cluster-wide presence: ports with an
//!   embedded adapter and, configured, a distributed one ([`redis`]);
//! - [`app`] and [`server`]: assembling and serving, TLS and graceful shutdown;
//!   [`role`]: whether a node serves the API, runs background workers, or both;
//!   [`supervisor`]: every background loop, one stop signal, and the
//!   order graceful shutdown stops them in.

pub mod app;
pub mod background;
pub mod broadcast;
pub mod cache;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod module;
pub mod presence;
pub mod ratelimit;
pub mod redis;
pub mod role;
pub mod server;
pub mod services;
pub mod supervisor;
pub mod telemetry;

pub use app::App;
pub use config::Config;
pub use db::Db;
pub use error::{ApiError, Problem};
pub use module::{Module, Platform};
pub use role::Role;
