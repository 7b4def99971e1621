//! Test support: start a real Basalt server on a random port, against a
//! fresh database, and talk HTTP to it.
//!
//! The database is chosen by the environment, so one suite runs on both
//! backends:
//! - by default, a new SQLite file in a temporary folder per test;
//! - with `TEST_POSTGRES_URL` set (an admin URL such as
//!   `postgres://postgres@127.0.0.1:5433/postgres`), a new PostgreSQL
//!   database per test, created on that server.
//!
//! Likewise the distributed adapters: with `TEST_REDIS_URL` set, every app
//! shares its cache and rate limits through that Redis ([`redis`]); with
//! `TEST_AMQP_URL`, its domain events travel through that RabbitMQ. Each app
//! gets its own key prefix and queue names there.
//!
//! (The variables deliberately have no `BASALT_` prefix: Basalt rejects unknown
//! `BASALT_*` keys, and test processes pass their environment on to the
//! binaries they start.)

pub mod paypal;
pub mod ports;
pub mod redis;
pub mod smtp;
pub mod stripe;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use basalt_platform::config::DatabaseUrl;
use basalt_platform::{App, Config, Module, Platform, server};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Environment variable naming the PostgreSQL server tests create databases on.
pub const POSTGRES_ENV: &str = "TEST_POSTGRES_URL";

/// The backend this test run uses, for test names and messages.
pub fn backend_name() -> &'static str {
    if postgres_admin_url().is_some() {
        "postgres"
    } else {
        "sqlite"
    }
}

fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty())
}

/// A database URL for a brand-new, empty database: an SQLite file in
/// `dir`, or a new database on the PostgreSQL server of [`POSTGRES_ENV`].
pub async fn fresh_database(dir: &std::path::Path) -> DatabaseUrl {
    match postgres_admin_url() {
        None => DatabaseUrl::default_sqlite(dir),
        Some(admin) => {
            let name = format!("basalt_test_{}", uuid::Uuid::new_v4().simple());
            let options =
                PgConnectOptions::from_str(&admin).expect("TEST_POSTGRES_URL is a valid URL");
            let mut conn = options
                .connect()
                .await
                .expect("connect to TEST_POSTGRES_URL");
            // The name is generated above from hex digits only: no injection possible.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let mut url = url::Url::parse(&admin).expect("TEST_POSTGRES_URL is a valid URL");
            url.set_path(&name);
            DatabaseUrl::parse(url.as_str()).expect("postgres URL")
        }
    }
}

/// A change applied to the test configuration before the app is built.
type ConfigChange = Box<dyn FnOnce(&mut Config) + Send>;

/// Builds a [`TestApp`].
pub struct TestAppBuilder {
    modules: Vec<Box<dyn Module>>,
    configure: Vec<ConfigChange>,
    env: Vec<(String, String)>,
    tls: bool,
    node_of: Option<Cluster>,
}

/// What nodes of one cluster share: the database and the Redis namespace.
#[derive(Clone)]
struct Cluster {
    database_url: DatabaseUrl,
    redis_url: Option<basalt_platform::config::RedisUrl>,
    redis_prefix: String,
    amqp_url: Option<basalt_platform::config::AmqpUrl>,
    amqp_prefix: String,
}

impl TestAppBuilder {
    /// Makes the new app another node of `other`'s cluster: same database,
    /// same Redis keys (when Redis is configured), its own memory.
    pub fn node_of(mut self, other: &TestApp) -> Self {
        let config = &other.platform.config;
        self.node_of = Some(Cluster {
            database_url: config.database_url.clone(),
            redis_url: config.redis_url.clone(),
            redis_prefix: config.redis.key_prefix.clone(),
            amqp_url: config.amqp_url.clone(),
            amqp_prefix: config.events.amqp_prefix.clone(),
        });
        self
    }

    /// Adds a module to the app.
    pub fn module(mut self, module: impl Module) -> Self {
        self.modules.push(Box::new(module));
        self
    }

    /// Adds several modules (e.g. the binary's full list).
    pub fn modules(mut self, modules: Vec<Box<dyn Module>>) -> Self {
        self.modules.extend(modules);
        self
    }

    /// Sets a configuration variable, as `BASALT_*` in the environment would
    /// (the way to reach module sections, e.g. `BASALT_IDENTITY__…`).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Changes the configuration before the app is built.
    pub fn configure(mut self, f: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// Serves HTTPS with a freshly generated self-signed certificate, which
    /// the test client trusts (and nothing else).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Starts the server.
    pub async fn spawn(mut self) -> TestApp {
        server::install_crypto_provider();
        // On the distributed stack, browser sessions live in Redis too.
        let has_identity = self.modules.iter().any(|m| m.name() == "identity");
        let chooses_store = self
            .env
            .iter()
            .any(|(name, _)| name == "BASALT_IDENTITY__SESSION_STORE");
        if has_identity
            && !chooses_store
            && self.node_of.is_none()
            && redis::shared_redis_url().is_some()
        {
            self.env
                .push(("BASALT_IDENTITY__SESSION_STORE".into(), "redis".into()));
        }
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::load(&basalt_platform::config::ConfigSources {
            file: None,
            env: self.env,
            sections: self.modules.iter().map(|m| m.name().to_owned()).collect(),
        })
        .expect("test configuration is valid");
        config.data_dir = data_dir.path().to_path_buf();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        match self.node_of {
            Some(cluster) => {
                config.database_url = cluster.database_url;
                config.redis_url = cluster.redis_url;
                config.redis.key_prefix = cluster.redis_prefix;
                config.amqp_url = cluster.amqp_url;
                config.events.amqp_prefix = cluster.amqp_prefix;
            }
            None => {
                config.database_url = fresh_database(data_dir.path()).await;
                // A test that names its own Redis (`.env("BASALT_REDIS_URL", …)`) keeps it.
                if let Some(url) = redis::shared_redis_url().filter(|_| config.redis_url.is_none())
                {
                    config.redis_url = Some(basalt_platform::config::RedisUrl(url.into()));
                    config.redis.key_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
                }
                if let Some(url) = std::env::var("TEST_AMQP_URL")
                    .ok()
                    .filter(|s| !s.is_empty() && config.amqp_url.is_none())
                {
                    config.amqp_url = Some(basalt_platform::config::AmqpUrl(url.into()));
                    config.events.amqp_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
                }
            }
        }
        config.http.shutdown_grace_secs = 5;
        let mut client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if self.tls {
            let cert =
                rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                    .expect("self-signed certificate");
            let cert_path = data_dir.path().join("tls-cert.pem");
            let key_path = data_dir.path().join("tls-key.pem");
            std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
            std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
            config.tls = Some(basalt_platform::config::TlsFiles {
                cert: cert_path,
                key: key_path,
            });
            let root =
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("certificate");
            client = client.tls_backend_rustls().tls_certs_only([root]);
        }
        for f in self.configure {
            f(&mut config);
        }

        let listener = server::bind(config.listen).expect("bind a free port");
        let addr = listener.local_addr().expect("local address");
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let app = App::build(config, self.modules).await.expect("app builds");
        let platform = app.platform.clone();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server::serve(app, listener, async {
            let _ = shutdown_rx.await;
        }));
        TestApp {
            addr,
            base_url: format!("{scheme}://{addr}"),
            client: client.build().expect("http client"),
            platform,
            data_dir,
            shutdown: Some(shutdown_tx),
            server: Some(server),
        }
    }
}

/// A running server and a client for it. Dropping it stops the server.
pub struct TestApp {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` (or `https://`).
    pub base_url: String,
    /// A client that does not follow redirects (and trusts the test certificate).
    pub client: reqwest::Client,
    /// The app's shared services, e.g. to reach its database directly.
    pub platform: Platform,
    /// The app's data folder (removed on drop).
    pub data_dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// A builder with no modules and default test configuration.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            modules: Vec::new(),
            configure: Vec::new(),
            env: Vec::new(),
            tls: false,
            node_of: None,
        }
    }

    /// Starts an app with the given modules and default test configuration.
    pub async fn spawn(modules: Vec<Box<dyn Module>>) -> Self {
        Self::builder().modules(modules).spawn().await
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request is answered")
    }

    /// Where the data folder is.
    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }

    /// Signals a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Shuts down gracefully and returns how the server ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shut_down().await
    }

    /// Like [`TestApp::stop`], but keeps the app's data folder (and so an
    /// SQLite database) for the test to inspect afterwards.
    pub async fn shut_down(&mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        match self.server.take() {
            Some(server) => server.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}
