//! Extractors for the RealWorld routes: the caller (through the identity
//! module's authenticator) and JSON bodies, failing in the RealWorld shape.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use basalt_identity::auth::{Authenticated, MaybeAuthenticated};
use serde::de::DeserializeOwned;

use crate::error::BlogError;

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
    type Rejection = BlogError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let MaybeAuthenticated(who) = MaybeAuthenticated::from_request_parts(parts, state).await?;
        Ok(Self(who))
    }
}

/// A signed-in caller; 401 otherwise.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Authenticated);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = BlogError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Viewer::from_request_parts(parts, state)
            .await?
            .0
            .map(Self)
            .ok_or(BlogError::Unauthorized)
    }
}

/// A JSON body; malformed or mistyped bodies are a 422 naming the problem.
#[derive(Debug, Clone)]
pub struct RwJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for RwJson<T> {
    type Rejection = BlogError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(BlogError::invalid("body", &rejection.body_text())),
        }
    }
}
