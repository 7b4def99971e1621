//! Extractors for the RealWorld routes: the caller (through the identity
//! module's authenticator), JSON bodies, path and query parameters, failing
//! in the RealWorld shape. Bodies, paths and queries go through the
//! platform's input checks ([`basalt_platform::http::input`]) first.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use basalt_identity::auth::{Authenticated, MaybeAuthenticated};
use basalt_platform::http::input::{self, BadParam, JsonInputError};
use serde::de::DeserializeOwned;

use crate::error::BlogError;
use basalt_platform::error::RealWorld;

/// The caller, if any. Credentials that are present but invalid are a 401.
#[derive(Debug, Clone)]
pub struct Viewer(pub Option<Authenticated>);

impl Viewer {
    /// The caller's account id.
    pub fn id(&self) -> Option<uuid::Uuid> {
        self.0.as_ref().map(|a| a.user_id)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = RealWorld;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let MaybeAuthenticated(who) = MaybeAuthenticated::from_request_parts(parts, state).await?;
        Ok(Self(who))
    }
}

/// A signed-in caller; 401 otherwise.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Authenticated);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = RealWorld;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Viewer::from_request_parts(parts, state)
            .await?
            .0
            .map(Self)
            .ok_or_else(|| BlogError::Unauthorized.into())
    }
}

/// A JSON body; a NUL in a field, or a malformed or mistyped body, is a 422
/// naming the problem.
#[derive(Debug, Clone)]
pub struct RwJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for RwJson<T> {
    type Rejection = RealWorld;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let refused = match input::json_body::<T, S>(req, state).await {
            Ok(value) => return Ok(Self(value)),
            Err(JsonInputError::Nul { field }) => {
                BlogError::invalid(&field, JsonInputError::NUL_MESSAGE)
            }
            Err(JsonInputError::Json(rejection)) => {
                BlogError::invalid("body", &rejection.body_text())
            }
            Err(JsonInputError::Body(rejection)) => {
                BlogError::invalid("body", &rejection.body_text())
            }
        };
        Err(refused.into())
    }
}

impl From<BadParam> for BlogError {
    fn from(p: BadParam) -> Self {
        Self::invalid(&p.name, BadParam::MESSAGE)
    }
}

/// Path parameters; a control character or a value of the wrong type is a 422.
#[derive(Debug, Clone)]
pub struct RwPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for RwPath<T> {
    type Rejection = RealWorld;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        input::check_path(parts).await.map_err(BlogError::from)?;
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|r| BlogError::invalid("path", &r.body_text()).into())
    }
}

/// Query parameters; a control character or a malformed query is a 422.
#[derive(Debug, Clone)]
pub struct RwQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for RwQuery<T> {
    type Rejection = RealWorld;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        input::check_query(parts).map_err(BlogError::from)?;
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|r| BlogError::invalid("query", &r.body_text()).into())
    }
}
