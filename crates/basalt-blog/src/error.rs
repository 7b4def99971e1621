//! Errors on the RealWorld routes, in the RealWorld shape:
//! `{"errors": {"body": ["…"]}}`, or one key per invalid field.

use basalt_identity::error::IdentityError;
use basalt_platform::error::{ErrorKind, Failure, FieldError, RealWorld};

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

/// How each blog error is classified, in the RealWorld API's words; the
/// platform renders it in RealWorld's shape ([`RealWorld`]).
impl From<BlogError> for Failure {
    fn from(e: BlogError) -> Self {
        match e {
            BlogError::Invalid(errors) => Failure::invalid(
                errors
                    .into_iter()
                    .map(|(field, message)| FieldError::new(field, message))
                    .collect(),
            ),
            BlogError::Unauthorized => Failure::new(ErrorKind::Unauthenticated),
            BlogError::Forbidden => Failure::new(ErrorKind::Forbidden),
            BlogError::NotFound(what) => {
                Failure::new(ErrorKind::NotFound).with_detail(format!("{what} not found"))
            }
            BlogError::Identity(e) => match e {
                IdentityError::Taken { fields } => Failure::invalid(
                    fields
                        .into_iter()
                        .map(|field| FieldError::new(field, "has already been taken"))
                        .collect(),
                ),
                // RealWorld front ends show `field + " " + message`.
                IdentityError::SignInFailed => Failure::new(ErrorKind::Unauthenticated)
                    .with_fields(vec![FieldError::new("email or password", "is invalid")]),
                IdentityError::Unauthenticated => Failure::new(ErrorKind::Unauthenticated),
                IdentityError::Forbidden | IdentityError::Csrf(_) => {
                    Failure::new(ErrorKind::Forbidden)
                }
                IdentityError::NotFound => {
                    Failure::new(ErrorKind::NotFound).with_detail("user not found")
                }
                other => Failure::from(other),
            },
            BlogError::Database(e) => Failure::from(e),
            BlogError::Internal(e) => Failure::internal(e),
        }
    }
}

impl From<BlogError> for RealWorld {
    fn from(e: BlogError) -> Self {
        Self(e.into())
    }
}
