//! GraphiQL at `/graphiql` (placeholder until the vendored page lands).

use axum::Router;

/// The GraphiQL routes, against `endpoint`.
pub fn router(endpoint: &'static str) -> Router {
    let _ = endpoint;
    Router::new()
}
