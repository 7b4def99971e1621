//! Errors on the RealWorld routes, in the RealWorld shape:
//! `{"errors": {"body": ["…"]}}`, or one key per invalid field.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use basalt_identity::error::{IdentityError, too_many_requests};
use serde_json::json;

/// The RealWorld error body, as documented.
#[derive(Debug, utoipa::ToSchema)]
pub struct RealWorldErrors {
    /// Messages by field (`body` when no one field is at fault).
    pub errors: std::collections::BTreeMap<String, Vec<String>>,
}

/// What the blog's routes can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BlogError {
    /// 422 with one message per field.
    #[error("invalid input")]
    Invalid(Vec<(String, String)>),
    /// 401: no or bad credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// 403: not yours.
    #[error("forbidden")]
    Forbidden,
    /// 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// From the identity module (sign-up, sign-in, profile updates).
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Anything else (logged, never shown).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl BlogError {
    /// A 422 about one field.
    pub fn invalid(field: &str, message: &str) -> Self {
        Self::Invalid(vec![(field.to_owned(), message.to_owned())])
    }
}

fn realworld(status: StatusCode, errors: Vec<(String, String)>) -> Response {
    let mut map = serde_json::Map::new();
    for (field, message) in errors {
        let entry = map.entry(field).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!(message));
        }
    }
    (status, Json(json!({ "errors": map }))).into_response()
}

fn body(status: StatusCode, message: &str) -> Response {
    realworld(status, vec![("body".into(), message.into())])
}

impl IntoResponse for BlogError {
    fn into_response(self) -> Response {
        match self {
            Self::Invalid(errors) => realworld(StatusCode::UNPROCESSABLE_ENTITY, errors),
            Self::Unauthorized => body(StatusCode::UNAUTHORIZED, "missing or invalid token"),
            Self::Forbidden => body(StatusCode::FORBIDDEN, "you may not change this"),
            Self::NotFound(what) => body(StatusCode::NOT_FOUND, &format!("{what} not found")),
            Self::Identity(e) => match e {
                IdentityError::Invalid(fields) => realworld(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    fields.into_iter().map(|f| (f.field, f.message)).collect(),
                ),
                IdentityError::Taken { field } => realworld(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    vec![(field.into(), "has already been taken".into())],
                ),
                IdentityError::SignInFailed => realworld(
                    StatusCode::UNAUTHORIZED,
                    vec![("email or password".into(), "is invalid".into())],
                ),
                IdentityError::Unauthenticated => Self::Unauthorized.into_response(),
                IdentityError::Forbidden | IdentityError::Csrf(_) => {
                    Self::Forbidden.into_response()
                }
                IdentityError::NotFound => Self::NotFound("user").into_response(),
                IdentityError::RateLimited(decision) => too_many_requests(decision),
                other => other.into_response(),
            },
            // Overload, not a fault: 503, as the platform's own errors do.
            Self::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => {
                tracing::warn!("database pool exhausted");
                body(StatusCode::SERVICE_UNAVAILABLE, "database is unavailable")
            }
            Self::Database(e) => Self::Internal(e.into()).into_response(),
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                body(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}
