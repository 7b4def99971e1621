//! The identity module's error type, mapped to HTTP in one place.

use basalt_platform::error::{ErrorKind, Failure, FieldError};

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

/// How each identity error is classified; the platform renders it.
impl From<IdentityError> for Failure {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid(errors) => Failure::invalid(errors),
            IdentityError::Taken { fields } => Failure::invalid(
                fields
                    .into_iter()
                    .map(|field| FieldError::new(field, "is already taken"))
                    .collect(),
            ),
            IdentityError::SignInFailed => {
                Failure::new(ErrorKind::Unauthenticated).with_detail(SIGN_IN_FAILED)
            }
            IdentityError::Unauthenticated => Failure::new(ErrorKind::Unauthenticated),
            IdentityError::Forbidden => Failure::new(ErrorKind::Forbidden),
            IdentityError::Csrf(why) => {
                Failure::new(ErrorKind::Forbidden).with_detail(format!("CSRF check failed: {why}"))
            }
            IdentityError::InvalidToken => {
                Failure::bad_request("The token is invalid, spent or expired.")
            }
            IdentityError::NotFound => Failure::new(ErrorKind::NotFound),
            IdentityError::RateLimited(decision) => Failure::rate_limited(decision),
            IdentityError::Database(e) => Failure::from(e),
            IdentityError::Internal(e) => Failure::internal(e),
        }
    }
}
