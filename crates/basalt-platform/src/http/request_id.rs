//! Request ids: accepted from `X-Request-Id` when well-formed, generated
//! otherwise, stored in the request's extensions and echoed on the response.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header carrying the request id.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, available as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// A client-supplied id is kept only if it is short and made of safe
/// characters, so it cannot forge log lines or bloat them.
fn is_acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware: see the module documentation.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(&X_REQUEST_ID) {
        Some(value) if is_acceptable(value) => value.clone(),
        _ => HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .unwrap_or(HeaderValue::from_static("invalid")),
    };
    request
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), id.clone());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_short_safe_ids() {
        assert!(is_acceptable(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!is_acceptable(&HeaderValue::from_static("")));
        assert!(!is_acceptable(&HeaderValue::from_static("has space")));
        assert!(!is_acceptable(
            &HeaderValue::from_str(&"a".repeat(129)).expect("ascii")
        ));
    }
}
