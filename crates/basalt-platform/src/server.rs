//! Serving: plain HTTP or HTTPS (rustls), the slow-client defence, and
//! graceful shutdown.

mod connections;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

use axum_server::Handle;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use crate::app::App;
use connections::ConnectionGuard;

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

/// Serves `app` on `listener` until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish within the grace period, and
/// closes the database pool.
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
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutdown requested: finishing in-flight requests"
        );
        signal_handle.graceful_shutdown(Some(grace));
    });

    // Background consumers start only on nodes whose role runs them; later
    // ones (outbox relay, event consumers) hook in here the same way.
    let role = config.role;
    let workers = role.runs_workers().then(|| app.platform.jobs.start());
    // `jobs.workers = 0` also makes a node API-only: no relay either.
    let relay =
        (role.runs_workers() && config.jobs.workers > 0).then(|| app.platform.events.start());
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
    // Work requests handed off (sign-in checks settling their attempts)
    // ends next, with the same grace as requests.
    let unfinished = background.drain(grace).await;
    if unfinished > 0 {
        tracing::warn!(unfinished, "background work cut off by the shutdown grace");
    }
    // Running jobs get the same grace as requests; unfinished ones go back to the queue.
    if let Some(workers) = workers {
        workers.shutdown(grace).await;
    }
    if let Some(relay) = relay {
        relay.shutdown(grace).await;
    }
    db.close().await;
    tracing::info!("shutdown complete");
    Ok(())
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
