//! Every error response the platform produces is problem+json: the 404 and
//! 405 fallbacks, panics, timeouts, and bare errors from layers and
//! extractors (413 from the body limit, 400/415/422 from JSON rejections).
//! The exception: 404 and 405 inside a route space a module declared with
//! another error dialect ([`ErrorDialects`]) take that dialect, so that a
//! RealWorld front end can show them.

use std::any::Any;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Problem;

/// How a route space renders its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDialect {
    /// RFC 9457 problem+json (the default).
    Problem,
    /// The RealWorld API's `{"errors": {"body": ["…"]}}`.
    RealWorld,
}

/// Path prefixes whose errors are not problem+json, declared by modules
/// ([`crate::module::Wiring::error_dialect`]). A prefix covers itself and
/// everything below it (`/api/articles` covers `/api/articles/x/comments`,
/// not `/api/articlesx`).
#[derive(Debug, Clone, Default)]
pub struct ErrorDialects(Vec<(String, ErrorDialect)>);

impl ErrorDialects {
    /// Declares `prefix` to use `dialect`.
    pub fn add(&mut self, prefix: &str, dialect: ErrorDialect) {
        self.0
            .push((prefix.trim_end_matches('/').to_owned(), dialect));
    }

    /// The dialect of `path`.
    pub fn of(&self, path: &str) -> ErrorDialect {
        self.0
            .iter()
            .filter(|(prefix, _)| {
                path.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(ErrorDialect::Problem, |(_, dialect)| *dialect)
    }

    fn answer(&self, path: &str, status: StatusCode, realworld: &str) -> Response {
        match self.of(path) {
            ErrorDialect::Problem => Problem::from_status(status, None).into_response(),
            ErrorDialect::RealWorld => crate::error::realworld_message(status, realworld),
        }
    }

    /// Fallback for unknown paths.
    pub fn not_found(&self, path: &str) -> Response {
        self.answer(path, StatusCode::NOT_FOUND, "not found")
    }

    /// Fallback for a known path with an unsupported method.
    pub fn method_not_allowed(&self, path: &str) -> Response {
        self.answer(path, StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    }
}

/// `CatchPanicLayer` handler: the panic is logged, the client gets a plain 500.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %message, "handler panicked");
    Problem::from_status(StatusCode::INTERNAL_SERVER_ERROR, None).into_response()
}

/// Middleware: answers 503 when the handler takes longer than the timeout.
pub async fn request_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::from_status(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(format!(
                "The request took longer than {} s.",
                limit.as_secs()
            )),
        )
        .into_response(),
    }
}

/// Longest plain-text error body kept as a problem's `detail`.
const MAX_DETAIL_BYTES: usize = 512;

/// Middleware: rewrites error responses that are not JSON into problem+json,
/// keeping a short plain-text message as `detail` for client errors only.
pub async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let detail = if status.is_client_error() && is_plain_text(&parts.headers) {
        axum::body::to_bytes(body, MAX_DETAIL_BYTES)
            .await
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .filter(|s| !s.trim().is_empty())
    } else {
        None
    };
    let problem = Problem::from_status(status, detail).into_response();
    let (problem_parts, problem_body) = problem.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        problem_parts.headers[header::CONTENT_TYPE].clone(),
    );
    Response::from_parts(parts, Body::new(problem_body))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            essence == "application/json" || essence.ends_with("+json")
        })
}

fn is_plain_text(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_covers_itself_and_what_is_below_it() {
        let mut dialects = ErrorDialects::default();
        dialects.add("/api/articles", ErrorDialect::RealWorld);
        dialects.add("/api/user/", ErrorDialect::RealWorld);
        for path in [
            "/api/articles",
            "/api/articles/a/b",
            "/api/user",
            "/api/user/x",
        ] {
            assert_eq!(dialects.of(path), ErrorDialect::RealWorld, "{path}");
        }
        for path in ["/api/articlesx", "/api/users", "/api/me", "/nope"] {
            assert_eq!(dialects.of(path), ErrorDialect::Problem, "{path}");
        }
    }
}
