//! The renderings of a [`Failure`]: RFC 9457 problem+json (the default,
//! `impl IntoResponse for Failure`), RealWorld's `{"errors": …}`
//! ([`RealWorld`]) and GraphQL's `extensions` ([`Failure::graphql_extensions`]).
//! Each reads the same classification; none knows any module.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{ErrorKind, Failure, Problem};

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let detail = match self.kind {
            // Never the cause: it may quote SQL or a stack.
            ErrorKind::Internal => None,
            _ => self.detail.clone(),
        };
        let detail = detail.or_else(|| {
            (self.kind == ErrorKind::InvalidInput && !self.fields.is_empty())
                .then(|| "One or more fields are invalid.".to_owned())
        });
        let mut response = Problem {
            errors: self.fields.clone(),
            ..Problem::from_status(status, detail)
        }
        .into_response();
        rate_limit_headers(&self, response.headers_mut());
        response
    }
}

/// A failure rendered in the RealWorld API's shape, `{"errors": {"field":
/// ["message"]}}`, where front ends print `field + " " + message`; a
/// failure without fields is reported under `body`.
#[derive(Debug)]
pub struct RealWorld(pub Failure);

impl From<Failure> for RealWorld {
    fn from(failure: Failure) -> Self {
        Self(failure)
    }
}

impl From<sqlx::Error> for RealWorld {
    fn from(e: sqlx::Error) -> Self {
        Self(e.into())
    }
}

impl From<anyhow::Error> for RealWorld {
    fn from(e: anyhow::Error) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for RealWorld {
    fn into_response(self) -> Response {
        let failure = self.0;
        failure.log();
        let status = match failure.kind {
            // RealWorld answers every kind of invalid input with 422.
            ErrorKind::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
            _ => failure.status(),
        };
        let mut errors = Map::new();
        if failure.fields.is_empty() {
            let message = match failure.kind {
                ErrorKind::Internal => "internal error".to_owned(),
                kind => failure
                    .detail
                    .clone()
                    .unwrap_or_else(|| realworld_default(kind).to_owned()),
            };
            errors.insert("body".into(), json!([message]));
        }
        for field in &failure.fields {
            let entry = errors
                .entry(field.field.clone())
                .or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(json!(field.message));
            }
        }
        let mut response = (status, Json(json!({ "errors": errors }))).into_response();
        rate_limit_headers(&failure, response.headers_mut());
        response
    }
}

/// A RealWorld error document with one message under `body`, for statuses no
/// [`ErrorKind`] has (the 405 fallback).
pub(crate) fn realworld_message(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "errors": { "body": [message] } }))).into_response()
}

fn realworld_default(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "is invalid",
        ErrorKind::Unauthenticated => "missing or invalid token",
        ErrorKind::Forbidden => "you may not change this",
        ErrorKind::NotFound => "not found",
        ErrorKind::Conflict => "conflicts with the current state",
        ErrorKind::PreconditionFailed => "precondition failed",
        ErrorKind::RateLimited => "too many requests",
        ErrorKind::Unavailable => "service unavailable",
        ErrorKind::Internal => "internal error",
    }
}

impl Failure {
    /// The `extensions` of a GraphQL error: the stable `code`, and the
    /// invalid `fields` or `retryAfter` (seconds) where they apply. Logs an
    /// internal cause, like the HTTP renderings.
    pub fn graphql_extensions(&self) -> Map<String, Value> {
        self.log();
        let mut extensions = Map::new();
        extensions.insert("code".into(), json!(self.kind.graphql_code()));
        if !self.fields.is_empty() {
            extensions.insert("fields".into(), json!(self.fields));
        }
        if let Some(retry) = self.retry_after_secs() {
            extensions.insert("retryAfter".into(), json!(retry));
        }
        extensions
    }

    /// The message of a GraphQL error: the detail, or the kind's phrase;
    /// never an internal cause.
    pub fn graphql_message(&self) -> String {
        match self.kind {
            ErrorKind::Internal => "internal error".into(),
            kind => self.detail.clone().unwrap_or_else(|| {
                kind.status()
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_owned()
            }),
        }
    }
}

/// `Retry-After` and the `RateLimit-*` headers of a rate-limited failure.
fn rate_limit_headers(failure: &Failure, headers: &mut HeaderMap) {
    let Some(d) = &failure.rate else {
        return;
    };
    let num =
        |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    headers.insert(
        header::RETRY_AFTER,
        num(failure.retry_after_secs().unwrap_or(1)),
    );
    headers.insert("ratelimit-limit", num(u64::from(d.limit)));
    headers.insert("ratelimit-remaining", num(u64::from(d.remaining)));
    headers.insert(
        "ratelimit-reset",
        num(d.reset_after.as_secs_f64().ceil() as u64),
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt;

    use super::*;
    use crate::error::FieldError;
    use crate::ratelimit::RateDecision;

    async fn body(response: Response) -> (StatusCode, HeaderMap, Value) {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).expect("json"),
        )
    }

    fn limited() -> Failure {
        Failure::rate_limited(RateDecision {
            allowed: false,
            limit: 10,
            remaining: 0,
            reset_after: Duration::from_secs(60),
            retry_after: Duration::from_millis(5200),
        })
    }

    #[tokio::test]
    async fn one_failure_three_renderings() {
        let invalid = || {
            Failure::invalid(vec![
                FieldError::new("email", "is taken"),
                FieldError::new("email", "is too long"),
            ])
        };
        let (status, headers, problem) = body(invalid().into_response()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(headers[header::CONTENT_TYPE], crate::error::PROBLEM_JSON);
        assert_eq!(problem["errors"][1]["message"], "is too long");

        let (status, _, realworld) = body(RealWorld(invalid()).into_response()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            realworld,
            json!({ "errors": { "email": ["is taken", "is too long"] } })
        );
        let extensions = invalid().graphql_extensions();
        assert_eq!(extensions["code"], "BAD_USER_INPUT");
        assert_eq!(extensions["fields"][0]["field"], "email");

        for rendered in [
            limited().into_response(),
            RealWorld(limited()).into_response(),
        ] {
            let (status, headers, _) = body(rendered).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(headers[header::RETRY_AFTER], "6");
            assert_eq!(headers["ratelimit-limit"], "10");
        }
        assert_eq!(limited().graphql_extensions()["retryAfter"], 6);
        assert_eq!(
            Failure::new(ErrorKind::Forbidden).graphql_extensions()["code"],
            "FORBIDDEN"
        );
    }

    #[tokio::test]
    async fn an_internal_cause_is_never_rendered() {
        let cause = || Failure::internal(anyhow::anyhow!("syntax error at SELECT password"));
        for rendered in [cause().into_response(), RealWorld(cause()).into_response()] {
            let (status, _, body) = body(rendered).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(!body.to_string().contains("SELECT"), "{body}");
        }
        assert!(!cause().graphql_message().contains("SELECT"));
        assert!(!format!("{:?}", cause()).contains("SELECT"));
    }

    #[tokio::test]
    async fn a_malformed_request_is_400_as_a_problem_and_422_in_realworld() {
        let (status, _, problem) = body(Failure::bad_request("bad JSON").into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(problem["detail"], "bad JSON");
        let (status, _, realworld) =
            body(RealWorld(Failure::bad_request("bad JSON")).into_response()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(realworld, json!({ "errors": { "body": ["bad JSON"] } }));
    }
}
