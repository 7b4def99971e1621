//! Serving: plain HTTP or HTTPS (rustls), the slow-client defence, and
//! graceful shutdown.

mod connections;
mod probe;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

use axum_server::Handle;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use crate::app::App;
use connections::ConnectionGuard;
pub use probe::probe_health;

/// Installs ring as rustls's process-wide crypto provider. Basalt links only
/// ring, but rustls still wants the choice made explicitly before first use.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Binds the configured address. Port 0 picks a free port (tests).
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener =
        TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The base URL clients use: the configured public URL, or the listener's.
pub fn base_url(app: &App, local: SocketAddr) -> String {
    match &app.platform.config.public_url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None => {
            let scheme = if app.platform.config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{local}")
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, with the background
/// services the node's role runs started under the app's
/// [`Supervisor`](crate::supervisor::Supervisor); then shuts down in the
/// order the [`supervisor`](crate::supervisor) module documents: stop
/// accepting, finish in-flight requests and the work they handed off, stop
/// job workers, then event consumers and the relay, then the rest (each
/// within the grace period), and close the database pool. Returns only once
/// every background task has ended.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    install_crypto_provider();
    let local = listener.local_addr()?;
    let base = base_url(&app, local);
    let config = app.platform.config.clone();
    let db = app.platform.db.clone();
    let metrics = app.platform.metrics.clone();
    let background = app.platform.background.clone();
    let handle: Handle<SocketAddr> = Handle::new();

    let grace = config.http.shutdown_grace();
    let signal_handle = handle.clone();
    // Ends with `serve` however it returns (an error too): nothing is left
    // behind waiting for a signal.
    let signal = AbortOnDrop(tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutdown requested: finishing in-flight requests"
        );
        signal_handle.graceful_shutdown(Some(grace));
    }));

    // Every background loop this node's role runs (job workers, outbox
    // relay, event consumers, modules' services) starts here, under the
    // supervisor, which stops them in order after HTTP (see `supervisor.rs`).
    let role = config.role;
    let supervisor = app.platform.supervisor.clone();
    supervisor.start(role);
    let service = app
        .router
        .into_make_service_with_connect_info::<SocketAddr>();
    if role.runs_http_api() {
        tracing::info!(
            listen = %local,
            database = db.backend().name(),
            tls = config.tls.is_some(),
            role = %role,
            "Basalt {} ready: API {base}/api, docs {base}/docs, metrics {base}/metrics",
            env!("CARGO_PKG_VERSION"),
        );
    } else {
        tracing::info!(
            listen = %local,
            database = db.backend().name(),
            tls = config.tls.is_some(),
            role = %role,
            workers = config.jobs.workers,
            "Basalt {} ready as a worker: health {base}/healthz, metrics {base}/metrics",
            env!("CARGO_PKG_VERSION"),
        );
    }
    // hyper's own HTTP/1 header timeout stays off (axum-server's default):
    // it would also close idle kept-alive connections at the same time, and
    // silently. `ConnectionGuard` times both, for HTTP/1 and HTTP/2.
    let served = serve_http(&config, listener, handle, service, metrics).await;
    drop(signal);
    // HTTP is done (or never started): stop everything else, in order.
    let unfinished = background.drain(grace).await;
    if unfinished > 0 {
        tracing::warn!(unfinished, "background work cut off by the shutdown grace");
    }
    supervisor.shutdown(grace).await;
    db.close().await;
    served?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Serves HTTP or HTTPS until the handle's graceful shutdown has finished.
async fn serve_http(
    config: &crate::config::Config,
    listener: TcpListener,
    handle: Handle<SocketAddr>,
    service: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) -> anyhow::Result<()> {
    match &config.tls {
        Some(tls) => {
            let rustls = RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(|e| anyhow::anyhow!("cannot load TLS certificate or key: {e}"))?;
            let tls =
                RustlsAcceptor::new(rustls).handshake_timeout(config.http.header_read_timeout());
            axum_server::from_tcp(listener)?
                .acceptor(ConnectionGuard::new(tls, &config.http, metrics))
                .handle(handle)
                .serve(service)
                .await?;
        }
        None => {
            axum_server::from_tcp(listener)?
                .acceptor(ConnectionGuard::new(
                    DefaultAcceptor::new(),
                    &config.http,
                    metrics,
                ))
                .handle(handle)
                .serve(service)
                .await?
        }
    }
    Ok(())
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
