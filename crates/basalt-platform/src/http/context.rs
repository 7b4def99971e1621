//! Who is calling, from where: the request context every module's service
//! takes for rate limits, lockout and audit records, whatever protocol
//! (REST, GraphQL, WebSocket) the request came by.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::client_addr::ClientAddr;

/// The client of a request: its address behind trusted proxies, and its
/// software.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// Client address (see [`ClientAddr`]): what rate limits, lockout and
    /// audit records key on.
    pub ip: Option<String>,
    /// Client software (`User-Agent`, at most 256 characters).
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            ip: ClientAddr::of(&parts.extensions).map(|c| c.ip.to_string()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
        })
    }
}
