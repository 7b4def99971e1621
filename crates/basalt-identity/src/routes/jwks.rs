//! `/.well-known/jwks.json`: the public keys that verify access tokens.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::service::IdentityService;

/// The JSON Web Key Set: the signing key, the next one (published before it
/// signs) and retired ones still within their tokens' lifetime.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "identity",
    responses((status = 200, description = "RFC 7517 key set", content_type = "application/json")))]
pub async fn jwks(State(service): State<IdentityService>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(service.keys().jwks()),
    )
}
