//! The HTTP stack: routing, middleware order, and the platform's own routes.

pub mod client_addr;
pub mod context;
pub mod docs;
pub mod health;
pub mod idempotency;
pub mod input;
pub mod metrics_endpoint;
pub mod observe;
pub mod paths;
pub mod problems;
pub mod request_id;
pub mod security;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use tower::ServiceExt as _;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::module::{Platform, ReadinessCheck};

/// Builds the whole router: platform routes, the modules' documented
/// (`module_routes`) and raw (`raw_routes`) routes, the docs, the fallbacks
/// and the middleware stack. `readiness` are the modules' checks, folded
/// into `/readyz`.
///
/// Every module is wired whatever the node's [`crate::Role`] (that is where
/// job handlers and consumers are registered), but a node that does not
/// serve the API mounts only the operational routes (`/healthz`, `/readyz`,
/// `/metrics`); anything else is a 404 problem.
pub fn build_router(
    platform: &Platform,
    module_routes: Vec<(&'static str, OpenApiRouter)>,
    raw_routes: Router,
    readiness: Vec<ReadinessCheck>,
    dialects: problems::ErrorDialects,
) -> anyhow::Result<Router> {
    let config = &platform.config;
    let serves_api = config.role.runs_http_api();
    let mut own = OpenApiRouter::new()
        .merge(health::routes(
            platform.db.clone(),
            platform.redis.clone(),
            readiness,
            platform.metrics.ready.clone(),
        ))
        .merge(metrics_endpoint::routes(
            platform.metrics.clone(),
            platform.db.clone(),
            config.metrics_token.clone(),
        ));
    docs::document_errors(own.get_openapi_mut(), &docs::PROBLEM_ERRORS);
    let mut api = OpenApiRouter::with_openapi(docs::root_document()).merge(own);
    for (module, routes) in module_routes {
        // Two schemas under one component name would document one wrongly.
        docs::check_components(api.get_openapi(), routes.get_openapi(), module)
            .map_err(anyhow::Error::msg)?;
        if serves_api {
            api = api.merge(routes);
        }
    }
    let (routes, openapi) = api.split_for_parts();

    // Every request carries the services modules offered each other.
    let services = platform.services.snapshot();
    let mut router = if serves_api {
        routes.merge(raw_routes).merge(docs::router(&openapi)?)
    } else {
        routes
    };
    // A node that does not serve the API has no route spaces of modules.
    let dialects = if serves_api {
        dialects
    } else {
        problems::ErrorDialects::default()
    };
    router = router
        .fallback({
            let dialects = dialects.clone();
            move |uri: axum::http::Uri| async move { dialects.not_found(uri.path()) }
        })
        .method_not_allowed_fallback(move |uri: axum::http::Uri| async move {
            dialects.method_not_allowed(uri.path())
        });

    // Layers listed innermost first; each wraps everything above it.
    router = router
        .layer(axum::middleware::from_fn(
            move |mut request: axum::extract::Request, next: axum::middleware::Next| {
                request.extensions_mut().extend(services.clone());
                next.run(request)
            },
        ))
        .layer(CatchPanicLayer::custom(problems::panic_response))
        .layer(RequestBodyLimitLayer::new(config.http.body_limit_bytes))
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(
            config.http.request_timeout(),
            problems::request_timeout,
        ))
        .layer(from_fn(problems::problem_for_bare_errors))
        .layer(CompressionLayer::new());
    if let Some(cors) = security::cors_layer(&config.cors_origins) {
        router = router.layer(cors);
    }
    router = router
        .layer(from_fn_with_state(
            security::SecurityHeaders {
                hsts: config.is_https(),
            },
            security::security_headers,
        ))
        .layer(from_fn_with_state(
            platform.metrics.clone(),
            observe::observe,
        ))
        // Outside `observe`, so the request log names the real client.
        .layer(from_fn_with_state(
            std::sync::Arc::new(client_addr::ClientAddrSettings {
                trusted_proxies: config.trusted_proxies.clone(),
                tls: config.tls.is_some(),
            }),
            client_addr::client_addr,
        ))
        .layer(from_fn(request_id::request_id));
    // The path is rewritten before the router inside matches it.
    Ok(Router::new().fallback_service(router.map_request(paths::trim_api_trailing_slash)))
}
