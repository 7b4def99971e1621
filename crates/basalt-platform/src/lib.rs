//! The Basalt platform: everything a domain module stands on.
//!
//! - [`config`]: one typed configuration, layered from defaults, a TOML file
//!   and the environment;
//! - [`db`]: SQLite or PostgreSQL behind one handle, queries written once,
//!   migrations registered per module;
//! - [`http`]: the middleware stack (request id, logs, metrics, security
//!   headers, CORS, limits), health probes, metrics and API docs;
//! - [`error`]: the HTTP error type and RFC 9457 problem documents;
//! - [`module`]: the contract a domain module implements;
//! - [`app`] and [`server`]: assembling and serving, TLS and graceful shutdown.

pub mod app;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod metrics;
pub mod module;
pub mod server;
pub mod telemetry;

pub use app::App;
pub use config::Config;
pub use db::Db;
pub use error::{ApiError, Problem};
pub use module::{Module, Platform};
