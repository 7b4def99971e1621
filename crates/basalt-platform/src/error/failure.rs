//! Failures classified once: every module's error says which [`ErrorKind`]
//! it is and what may be shown ([`Failure`]); the platform renders that as
//! problem+json, in RealWorld's shape, or as a GraphQL error, so no module
//! maps its errors to HTTP itself.

use std::fmt;

use axum::http::StatusCode;

use super::FieldError;
use crate::ratelimit::RateDecision;

/// The kinds of failure there are, whatever module or protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is malformed or fails validation (400/422), with the
    /// invalid fields when there are any.
    InvalidInput,
    /// No or invalid credentials (401).
    Unauthenticated,
    /// Authenticated, not allowed (403).
    Forbidden,
    /// No such thing, or not for this caller (404).
    NotFound,
    /// The request conflicts with the current state (409).
    Conflict,
    /// A precondition of the request does not hold (412).
    PreconditionFailed,
    /// Too many requests (429), with when to retry.
    RateLimited,
    /// A dependency is down or overloaded (503).
    Unavailable,
    /// A bug or an unexpected failure (500): its cause is logged, not shown.
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind. Invalid input is 422 when fields are
    /// named and 400 otherwise (see [`Failure::status`]).
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `extensions.code` of GraphQL errors.
    pub fn graphql_code(self) -> &'static str {
        match self {
            Self::InvalidInput => "BAD_USER_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

/// A classified failure: its kind and what a client may be shown. The cause
/// of an internal failure is kept for the log only.
pub struct Failure {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A sentence for the client, safe to show; `None` when the kind says it.
    pub detail: Option<String>,
    /// The invalid fields of [`ErrorKind::InvalidInput`].
    pub fields: Vec<FieldError>,
    /// The limit's state, for [`ErrorKind::RateLimited`] (`Retry-After`,
    /// `RateLimit-*`).
    pub rate: Option<RateDecision>,
    /// Whether the malformed input is the request itself (400) rather than
    /// the values of its fields (422).
    pub bad_request: bool,
    cause: Option<anyhow::Error>,
}

impl Failure {
    /// A failure of `kind`, with nothing more to say.
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            detail: None,
            fields: Vec::new(),
            rate: None,
            bad_request: false,
            cause: None,
        }
    }

    /// Adds a sentence the client may read.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Names the fields at fault (for any kind: a failed sign-in names
    /// `email or password` in RealWorld's words).
    pub fn with_fields(mut self, fields: Vec<FieldError>) -> Self {
        self.fields = fields;
        self
    }

    /// Invalid fields (422).
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        Self {
            fields,
            ..Self::new(ErrorKind::InvalidInput)
        }
    }

    /// A malformed request (400): bad JSON, a bad path or query value.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self {
            bad_request: true,
            ..Self::new(ErrorKind::InvalidInput).with_detail(detail)
        }
    }

    /// Refused by a rate limit.
    pub fn rate_limited(decision: RateDecision) -> Self {
        let retry = retry_after_secs(&decision);
        Self {
            rate: Some(decision),
            ..Self::new(ErrorKind::RateLimited)
                .with_detail(format!("Too many requests. Retry in {retry} s."))
        }
    }

    /// An unexpected failure: `cause` is logged when it is rendered, and
    /// never shown.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(ErrorKind::Internal)
        }
    }

    /// A dependency (`database`, `redis`) is down or overloaded.
    pub fn unavailable(dependency: &str) -> Self {
        Self::new(ErrorKind::Unavailable).with_detail(format!("{dependency} is unavailable"))
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        if self.kind == ErrorKind::InvalidInput && self.bad_request {
            StatusCode::BAD_REQUEST
        } else {
            self.kind.status()
        }
    }

    /// Whole seconds until a retry may succeed (at least 1), when limited.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.rate.as_ref().map(retry_after_secs)
    }

    /// Logs the cause of an internal failure (once, where it is rendered).
    pub fn log(&self) {
        if let Some(cause) = &self.cause {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        } else if self.kind == ErrorKind::Internal {
            tracing::error!("internal error");
        }
    }
}

fn retry_after_secs(decision: &RateDecision) -> u64 {
    decision.retry_after.as_secs_f64().ceil().max(1.0) as u64
}

/// The cause stays out of `Debug` too: failures end up in test output and
/// logs, and an internal cause may quote SQL.
impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                tracing::warn!("database pool exhausted");
                Self::unavailable("database")
            }
            other => Self::internal(other),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(e)
    }
}
