//! The identity module's error type, mapped to HTTP in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use basalt_platform::error::FieldError;
use basalt_platform::{ApiError, Problem};

use crate::passwords::PolicyViolation;

/// One message for every failed sign-in, so that a response never tells
/// whether the account exists, the password was wrong, or it is locked.
pub const SIGN_IN_FAILED: &str = "Wrong email or password, or too many attempts. Try again later.";

/// What can go wrong in identity operations.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Input failed validation.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// Email, username or both already taken.
    #[error("{fields:?} already taken")]
    Taken {
        /// `email`, `username` or both.
        fields: Vec<&'static str>,
    },
    /// Sign-in failed (any reason; deliberately vague).
    #[error("sign-in failed")]
    SignInFailed,
    /// No valid credentials on the request.
    #[error("not authenticated")]
    Unauthenticated,
    /// Authenticated, not allowed.
    #[error("forbidden")]
    Forbidden,
    /// A cookie-authenticated request without a valid CSRF token or origin.
    #[error("CSRF check failed: {0}")]
    Csrf(&'static str),
    /// An email or refresh token that is unknown, spent or expired.
    #[error("invalid or expired token")]
    InvalidToken,
    /// No such thing (for this user).
    #[error("not found")]
    NotFound,
    /// Too many requests.
    #[error("rate limited")]
    RateLimited(basalt_platform::ratelimit::RateDecision),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<PolicyViolation> for IdentityError {
    fn from(v: PolicyViolation) -> Self {
        Self::Invalid(vec![FieldError::new("password", v.to_string())])
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        match self {
            Self::Invalid(errors) => ApiError::Validation(errors).into_response(),
            Self::Taken { fields } => ApiError::Validation(
                fields
                    .into_iter()
                    .map(|field| FieldError::new(field, "is already taken"))
                    .collect(),
            )
            .into_response(),
            Self::SignInFailed => {
                Problem::from_status(StatusCode::UNAUTHORIZED, Some(SIGN_IN_FAILED.into()))
                    .into_response()
            }
            Self::Unauthenticated => ApiError::Unauthorized.into_response(),
            Self::Forbidden => ApiError::Forbidden.into_response(),
            Self::Csrf(why) => Problem::from_status(
                StatusCode::FORBIDDEN,
                Some(format!("CSRF check failed: {why}")),
            )
            .into_response(),
            Self::InvalidToken => Problem::from_status(
                StatusCode::BAD_REQUEST,
                Some("The token is invalid, spent or expired.".into()),
            )
            .into_response(),
            Self::NotFound => ApiError::NotFound.into_response(),
            Self::RateLimited(decision) => too_many_requests(decision),
            Self::Database(e) => ApiError::from(e).into_response(),
            Self::Internal(e) => ApiError::Internal(e).into_response(),
        }
    }
}

/// 429 with `Retry-After` and the `RateLimit-*` headers.
pub fn too_many_requests(d: basalt_platform::ratelimit::RateDecision) -> Response {
    let retry = d.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = Problem::from_status(
        StatusCode::TOO_MANY_REQUESTS,
        Some(format!("Too many requests. Retry in {retry} s.")),
    )
    .into_response();
    let h = response.headers_mut();
    let num =
        |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    h.insert(header::RETRY_AFTER, num(retry));
    h.insert("ratelimit-limit", num(u64::from(d.limit)));
    h.insert("ratelimit-remaining", num(u64::from(d.remaining)));
    h.insert(
        "ratelimit-reset",
        num(d.reset_after.as_secs_f64().ceil() as u64),
    );
    response
}
