//! Errors, classified once and rendered by the platform.
//!
//! A module's error type says which [`ErrorKind`] each of its errors is, by
//! converting into a [`Failure`] (`impl From<ModuleError> for Failure`); it
//! never builds an HTTP response itself. The platform renders a failure as
//! an RFC 9457 `application/problem+json` document (`impl IntoResponse for
//! Failure`), in the RealWorld API's shape ([`RealWorld`]), or as a GraphQL
//! error's `extensions.code` ([`Failure::graphql_extensions`]). Internal
//! failures are logged with their cause and answered with a generic message:
//! no stack trace, SQL text or driver message reaches a client.
//!
//! [`ApiError`] is the short way for platform code to say the same.

mod failure;
mod render;

pub use failure::{ErrorKind, Failure};
pub use render::RealWorld;
pub(crate) use render::realworld_message;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Problem {
    /// A URI reference identifying the problem type; `about:blank` means the
    /// HTTP status says it all.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary: the status's reason phrase for `about:blank`.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field-level problems of a validation error.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
    /// Extension members specific to a problem (RFC 9457 §3.2).
    #[serde(flatten, default)]
    #[schema(ignore)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// The field, as a JSON pointer-ish dotted path (`user.email`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Problem {
    /// A problem of type `about:blank` for `status`.
    pub fn from_status(status: StatusCode, detail: Option<String>) -> Self {
        Self {
            problem_type: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail,
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Fields failed validation (422).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No or invalid credentials (401).
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated but not allowed (403).
    #[error("forbidden")]
    Forbidden,
    /// No such resource (404).
    #[error("not found")]
    NotFound,
    /// The request conflicts with the current state (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A dependency is down (503); the message names it.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500); the cause is logged, not shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                Self::Unavailable("database".into())
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::BadRequest(detail) => Failure::bad_request(detail),
            ApiError::Validation(errors) => Failure::invalid(errors),
            ApiError::Unauthorized => Failure::new(ErrorKind::Unauthenticated),
            ApiError::Forbidden => Failure::new(ErrorKind::Forbidden),
            ApiError::NotFound => Failure::new(ErrorKind::NotFound),
            ApiError::Conflict(detail) => Failure::new(ErrorKind::Conflict).with_detail(detail),
            ApiError::Unavailable(dependency) => Failure::unavailable(&dependency),
            ApiError::Internal(error) => Failure::internal(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        Failure::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_never_leak_their_cause() {
        use http_body_util::BodyExt;
        let response =
            ApiError::Internal(anyhow::anyhow!("syntax error at or near SELECT password"))
                .into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let problem: Problem = serde_json::from_slice(&body).expect("problem json");
        assert_eq!(problem.status, 500);
        assert!(
            !String::from_utf8_lossy(&body).contains("SELECT"),
            "{body:?}"
        );
    }

    #[test]
    fn problem_serialises_per_rfc_9457() {
        let p = Problem {
            errors: vec![FieldError::new("email", "is taken")],
            ..Problem::from_status(StatusCode::UNPROCESSABLE_ENTITY, Some("bad".into()))
        };
        let v = serde_json::to_value(&p).expect("serialises");
        assert_eq!(v["type"], "about:blank");
        assert_eq!(v["title"], "Unprocessable Entity");
        assert_eq!(v["status"], 422);
        assert_eq!(v["errors"][0]["field"], "email");
    }
}
