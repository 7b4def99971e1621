//! Integration tests: each starts the real server on a random port and talks
//! HTTP to it, on SQLite by default or PostgreSQL with `TEST_POSTGRES_URL`.
//! One test binary (faster to link than one per file).

mod blog;
mod broadcast;
mod chat;
mod child_server;
mod cli;
mod concepts_doc;
mod docs;
mod events;
mod events_live;
mod fixture;
mod graphql;
mod health;
mod http_stack;
mod identity;
mod input_hygiene;
mod jobs;
mod jobs_cluster;
mod mail;
mod metrics;
mod modules;
mod presence;
mod proxies;
mod redis;
mod roles;
mod shop;
mod shutdown;
mod slow_clients;
mod sql_safety;
mod storage;
mod tls;
mod traces;

use basalt_testkit::TestApp;

/// The binary's modules plus the test fixture.
pub async fn spawn_app() -> TestApp {
    TestApp::builder()
        .modules(basalt::modules())
        .module(fixture::NotesModule)
        .spawn()
        .await
}
