//! Who is calling: extractors any module can use.
//!
//! Credentials, in order:
//! 1. `Authorization: Bearer <jwt>` or `Authorization: Token <jwt>` (the
//!    RealWorld scheme). Bearer requests are exempt from CSRF checks: a
//!    browser never attaches them on its own.
//! 2. The session cookie. A state-changing request (anything but GET, HEAD,
//!    OPTIONS) authenticated by the cookie must carry the session's CSRF
//!    token in `X-CSRF-Token` and come from an allowed `Origin` (or, lacking
//!    one, `Referer`); otherwise 403.
//!
//! An `Authorization` header that is present but invalid is a 401; it never
//! falls back to the cookie.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use basalt_platform::error::Failure;
use basalt_platform::http::client_addr::ClientAddr;
use uuid::Uuid;

use crate::crypto::constant_time_eq;
use crate::error::IdentityError;
use crate::model::Role;
use crate::service::IdentityService;
use crate::store::sessions::SessionRow;
use crate::tokens::jwt::AccessClaims;

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A verified access token.
    Token(Box<AccessClaims>),
    /// A live browser session.
    Session(Box<SessionRow>),
}

/// An authenticated caller. Use as an extractor: 401 without credentials.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user.
    pub user_id: Uuid,
    /// Their role now (read from the account, whatever a token claims).
    pub role: Role,
    /// The credential used.
    pub credential: Credential,
    /// The raw access token, when one was used (RealWorld echoes it back).
    pub token: Option<String>,
}

impl Authenticated {
    /// The session, when the cookie authenticated the request.
    pub fn session(&self) -> Option<&SessionRow> {
        match &self.credential {
            Credential::Session(s) => Some(s),
            Credential::Token(_) => None,
        }
    }
}

/// An optional caller: `None` when no credentials were sent (invalid ones
/// are still a 401).
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<Authenticated>);

/// An authenticated admin: 403 for other users.
#[derive(Debug, Clone)]
pub struct Admin(pub Authenticated);

/// The service, from the request's extensions (offered by the identity
/// module through the platform's service registry).
pub fn service_from(parts: &Parts) -> Result<IdentityService, IdentityError> {
    parts
        .extensions
        .get::<IdentityService>()
        .cloned()
        .ok_or_else(|| {
            IdentityError::Internal(anyhow::anyhow!("the identity module is not installed"))
        })
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuthenticated {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let service = service_from(parts)?;
        let intent = Intent::of_method(&parts.method);
        Ok(Self(authenticate(&service, parts, intent).await?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        MaybeAuthenticated::from_request_parts(parts, state)
            .await?
            .0
            .ok_or_else(|| IdentityError::Unauthenticated.into())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let who = Authenticated::from_request_parts(parts, state).await?;
        if who.role == Role::Admin {
            Ok(Self(who))
        } else {
            Err(IdentityError::Forbidden.into())
        }
    }
}

/// The bearer token of an `Authorization: Bearer|Token <jwt>` header.
/// `Err` when the header is there but unusable.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, IdentityError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| IdentityError::Unauthenticated)?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(IdentityError::Unauthenticated)?;
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        let token = token.trim();
        if token.is_empty() {
            Err(IdentityError::Unauthenticated)
        } else {
            Ok(Some(token))
        }
    } else {
        Err(IdentityError::Unauthenticated)
    }
}

/// What a request is about to do, which decides what a cookie-authenticated
/// one must also show: nothing to read, the CSRF token and an allowed
/// origin to write, an allowed origin to open a WebSocket (browsers send no
/// custom header with an upgrade, and let any page open one with the cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Reads only.
    Read,
    /// Changes something.
    Write,
    /// Opens a long-lived WebSocket.
    Subscribe,
}

impl Intent {
    /// REST's rule: anything but GET, HEAD and OPTIONS writes.
    pub fn of_method(method: &Method) -> Self {
        if is_safe_method(method) {
            Self::Read
        } else {
            Self::Write
        }
    }
}

/// Who sent `parts`, checked for `intent` (see the module docs): `None`
/// without credentials, an error for bad ones.
pub async fn authenticate(
    service: &IdentityService,
    parts: &Parts,
    intent: Intent,
) -> Result<Option<Authenticated>, IdentityError> {
    if let Some(token) = bearer_token(&parts.headers)? {
        let claims = service
            .issuer()
            .verify(token)
            .await
            .map_err(|_| IdentityError::Unauthenticated)?;
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| IdentityError::Unauthenticated)?;
        // The signature proves who the token was issued to, not that the
        // account still exists, still has that role, or has not signed out
        // everywhere since: the account's current standing decides.
        let standing = service
            .standing(user_id)
            .await?
            .filter(|s| claims.generation == s.token_generation)
            .ok_or(IdentityError::Unauthenticated)?;
        return Ok(Some(Authenticated {
            user_id,
            role: standing.role,
            credential: Credential::Token(Box::new(claims)),
            token: Some(token.to_owned()),
        }));
    }
    let Some(cookie) = session_cookie(&parts.headers, &cookie_name(service)) else {
        return Ok(None);
    };
    let Some(session) = service.session_for_token(&cookie).await? else {
        return Ok(None);
    };
    match intent {
        Intent::Read => {}
        Intent::Write => check_csrf(service, parts, &session)?,
        Intent::Subscribe => check_origin(service, parts)?,
    }
    // Roles can change: the session reads the current one.
    let Some(standing) = service.standing(session.user_id).await? else {
        return Ok(None);
    };
    Ok(Some(Authenticated {
        user_id: session.user_id,
        role: standing.role,
        credential: Credential::Session(Box::new(session)),
        token: None,
    }))
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The synchroniser-token check plus an origin check, for cookie-authenticated writes.
pub fn check_csrf(
    service: &IdentityService,
    parts: &Parts,
    session: &SessionRow,
) -> Result<(), IdentityError> {
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(IdentityError::Csrf("missing X-CSRF-Token header"))?;
    if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
        return Err(IdentityError::Csrf("wrong CSRF token"));
    }
    check_origin(service, parts)
}

/// The request must come from Basalt's own origin or a trusted one. The
/// origin comes from `Origin`, or from `Referer` when a browser omits it.
pub fn check_origin(service: &IdentityService, parts: &Parts) -> Result<(), IdentityError> {
    let headers = &parts.headers;
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(|r| url::Url::parse(r).ok())
                .map(|u| u.origin().ascii_serialization())
        })
        .ok_or(IdentityError::Csrf("missing Origin header"))?;
    if origin == "null" {
        return Err(IdentityError::Csrf("opaque origin"));
    }
    let own = own_origin(service, parts);
    let trusted =
        own.as_deref() == Some(origin.as_str()) || service.web().trusted_origins.contains(&origin);
    if trusted {
        Ok(())
    } else {
        Err(IdentityError::Csrf("origin not allowed"))
    }
}

/// Basalt's own origin: from the public URL, or else the host it was
/// reached at (`Host` in HTTP/1.1, the `:authority` in HTTP/2).
fn own_origin(service: &IdentityService, parts: &Parts) -> Option<String> {
    if let Some(public) = &service.web().public_url {
        return url::Url::parse(public)
            .ok()
            .map(|u| u.origin().ascii_serialization());
    }
    let host = match parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        Some(host) => host.to_owned(),
        None => parts.uri.authority()?.as_str().to_owned(),
    };
    // Behind a trusted TLS-terminating proxy, the scheme the client used.
    let https = service.web().https || ClientAddr::of(&parts.extensions).is_some_and(|c| c.https);
    let scheme = if https { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// `__Host-basalt_session` over HTTPS; browsers refuse `__Host-` cookies
/// without `Secure`, so plain-HTTP development uses `basalt_session`.
pub fn cookie_name(service: &IdentityService) -> String {
    if service.web().https {
        "__Host-basalt_session".into()
    } else {
        "basalt_session".into()
    }
}

/// The value of cookie `name`, if sent.
pub fn session_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session.
pub fn set_session_cookie(service: &IdentityService, token: &str, max_age_secs: i64) -> String {
    let secure = if service.web().https { "; Secure" } else { "" };
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        cookie_name(service),
        max_age_secs.max(0)
    )
}

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_session_cookie(service: &IdentityService) -> String {
    set_session_cookie(service, "", 0)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn bearer_and_token_schemes() {
        let mut h = HeaderMap::new();
        assert!(matches!(bearer_token(&h), Ok(None)));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&h).expect("ok"), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Token xyz"));
        assert_eq!(bearer_token(&h).expect("ok"), Some("xyz"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYXNz"),
        );
        assert!(bearer_token(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(bearer_token(&h).is_err());
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; basalt_session=tok; b=2"),
        );
        assert_eq!(session_cookie(&h, "basalt_session").as_deref(), Some("tok"));
        assert_eq!(session_cookie(&h, "__Host-basalt_session"), None);
    }
}
