//! `/api/auth/*`: sign-up, sign-in (sessions and tokens), sign-out,
//! sessions, refresh and revocation, email verification, password reset.

use axum::extract::{FromRequest, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::{Json, Path};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{
    Authenticated, check_origin, clear_session_cookie, cookie_name, session_cookie,
    set_session_cookie,
};
use crate::error::IdentityError;
use crate::model::{Role, User};
use crate::service::Registration;
use crate::service::{IdentityService, TokenPair};
use crate::store::sessions::SessionInfo;
use basalt_platform::http::context::RequestContext;

/// `{"user": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    /// The account.
    pub user: User,
}

/// Sign-up input.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Email address (unique, case-insensitive).
    #[schema(max_length = 254)]
    pub email: String,
    /// 3–32 letters, digits, `_`, `-`, `.` (unique, case-insensitive).
    #[schema(min_length = 3, max_length = 32)]
    pub username: String,
    /// 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// Email and password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A session sign-in's answer; the session itself is in the cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionSignIn {
    /// The account.
    pub user: User,
    /// Send as `X-CSRF-Token` with every state-changing request.
    pub csrf_token: String,
}

/// The current session's CSRF token.
#[derive(Debug, Serialize, ToSchema)]
pub struct CsrfToken {
    /// Send as `X-CSRF-Token` with every state-changing request.
    pub csrf_token: String,
}

/// A refresh token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token.
    pub refresh_token: String,
}

/// A token to revoke (RFC 7009).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// The refresh token.
    pub token: String,
}

/// A mailed token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The token from the mail.
    pub token: String,
}

/// An email address.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailRequest {
    /// Email address.
    pub email: String,
}

/// A reset token and the new password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetRequest {
    /// The token from the reset mail.
    pub token: String,
    /// The new password: 8 to 128 characters, not a common one.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// A user's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Newest first.
    pub sessions: Vec<SessionInfo>,
}

/// Creates an account and mails a verification link.
#[utoipa::path(post, path = "/api/auth/register", tag = "identity", request_body = RegisterRequest,
    responses((status = 201, body = UserBody), (status = 422, description = "Invalid or taken", body = Problem),
              (status = 429, description = "Too many sign-ups from this address", body = Problem)))]
pub async fn register(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    Json(body): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<UserBody>), Failure> {
    // The sign-up quota is the service's, shared with every other sign-up route.
    let user = service
        .register(
            Registration {
                email: body.email,
                username: body.username,
                password: body.password,
                role: Role::User,
            },
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(UserBody { user })))
}

/// Signs in and opens a browser session (cookie). Returns the CSRF token.
#[utoipa::path(post, path = "/api/auth/login", tag = "identity", request_body = Credentials,
    responses((status = 200, body = SessionSignIn, headers(("set-cookie" = String, description = "The session cookie"))),
              (status = 401, description = "Wrong email or password, or too many attempts", body = Problem),
              (status = 403, description = "Cross-origin request", body = Problem),
              (status = 429, body = Problem)))]
pub async fn login(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    request: axum::extract::Request,
) -> Result<Response, Failure> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    // Login CSRF: a browser posting from another site must not sign the
    // victim into the attacker's account. Non-browser clients send no Origin.
    if headers.contains_key(header::ORIGIN) {
        check_origin(&service, &parts)?;
    }
    // Extracted by hand: the origin check above needs the request parts first.
    let Json(body) = match Json::<Credentials>::from_request(
        axum::extract::Request::from_parts(parts.clone(), body),
        &(),
    )
    .await
    {
        Ok(json) => json,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let headers = &parts.headers;
    let previous = session_cookie(headers, &cookie_name(&service));
    let (outcome, cookie) = service
        .sign_in_with_session(&body.email, &body.password, previous.as_deref(), &ctx)
        .await?;
    let max_age = (cookie.expires_at - chrono::Utc::now()).num_seconds();
    Ok((
        [(
            header::SET_COOKIE,
            set_session_cookie(&service, &cookie.token, max_age),
        )],
        Json(SessionSignIn {
            user: outcome.user,
            csrf_token: cookie.csrf_token,
        }),
    )
        .into_response())
}

/// Ends the current session and clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "identity",
    responses((status = 204, description = "Signed out"), (status = 401, body = Problem), (status = 403, description = "CSRF check failed", body = Problem)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn logout(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    who: Authenticated,
) -> Result<Response, Failure> {
    if let Some(session) = who.session() {
        service.sign_out(session, &ctx).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_session_cookie(&service))],
    )
        .into_response())
}

/// The current session's CSRF token.
#[utoipa::path(get, path = "/api/auth/csrf", tag = "identity",
    responses((status = 200, body = CsrfToken), (status = 401, description = "No session", body = Problem)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn csrf(who: Authenticated) -> Result<Json<CsrfToken>, Failure> {
    let session = who.session().ok_or(IdentityError::Unauthenticated)?;
    Ok(Json(CsrfToken {
        csrf_token: session.csrf_token.clone(),
    }))
}

/// Signs in for an API client: an access token (JWT) and a refresh token.
#[utoipa::path(post, path = "/api/auth/token", tag = "identity", request_body = Credentials,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn token(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    Json(body): Json<Credentials>,
) -> Result<Json<TokenPair>, Failure> {
    let (_, pair) = service
        .sign_in_with_tokens(&body.email, &body.password, &ctx)
        .await?;
    Ok(Json(pair))
}

/// Exchanges a refresh token (single use) for a new pair.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "identity", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "Unknown, spent, revoked or expired", body = Problem),
              (status = 429, body = Problem)))]
pub async fn refresh(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    Json(body): Json<RefreshRequest>,
) -> Result<Json<TokenPair>, Failure> {
    Ok(Json(service.refresh(&body.refresh_token, &ctx).await?))
}

/// Revokes a refresh token and its family (RFC 7009: always 200).
#[utoipa::path(post, path = "/api/auth/revoke", tag = "identity", request_body = RevokeRequest,
    responses((status = 200, description = "Revoked (or was never valid)")))]
pub async fn revoke(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    Json(body): Json<RevokeRequest>,
) -> Result<StatusCode, Failure> {
    service.revoke_refresh_token(&body.token, &ctx).await?;
    Ok(StatusCode::OK)
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "identity",
    responses((status = 200, body = SessionList), (status = 401, body = Problem)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn list_sessions(
    State(service): State<IdentityService>,
    who: Authenticated,
) -> Result<Json<SessionList>, Failure> {
    let current = who.session().map(|s| s.id);
    let sessions = service
        .list_sessions(who.user_id)
        .await?
        .into_iter()
        .map(|s| SessionInfo {
            current: Some(s.id) == current,
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// Revokes one of the caller's sessions.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "identity", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "Not one of your sessions", body = Problem), (status = 401, body = Problem)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn revoke_session(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    who: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, Failure> {
    service.revoke_session(who.user_id, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs out everywhere: every session and refresh token of the caller.
#[utoipa::path(post, path = "/api/auth/logout-all", tag = "identity",
    responses((status = 204), (status = 401, body = Problem)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn logout_all(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    who: Authenticated,
) -> Result<Response, Failure> {
    service.sign_out_everywhere(who.user_id, &ctx).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_session_cookie(&service))],
    )
        .into_response())
}

/// Confirms an email address with the mailed token.
#[utoipa::path(post, path = "/api/auth/verify-email", tag = "identity", request_body = TokenRequest,
    responses((status = 200, body = UserBody), (status = 400, description = "Invalid, spent or expired token", body = Problem)))]
pub async fn verify_email(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    Json(body): Json<TokenRequest>,
) -> Result<Json<UserBody>, Failure> {
    Ok(Json(UserBody {
        user: service.verify_email(&body.token, &ctx).await?,
    }))
}

/// Mails a new verification link to the caller.
#[utoipa::path(post, path = "/api/auth/verify-email/resend", tag = "identity",
    responses((status = 202, description = "Queued (or already verified)"), (status = 401, body = Problem)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn resend_verification(
    State(service): State<IdentityService>,
    who: Authenticated,
) -> Result<StatusCode, Failure> {
    service.request_email_verification(who.user_id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Mails a reset link if the account exists; the answer is the same either way.
#[utoipa::path(post, path = "/api/auth/password/forgot", tag = "identity", request_body = EmailRequest,
    responses((status = 202, description = "Queued if the account exists"), (status = 429, body = Problem)))]
pub async fn forgot_password(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    Json(body): Json<EmailRequest>,
) -> Result<StatusCode, Failure> {
    service.request_password_reset(&body.email, &ctx).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a reset token; ends every session and token.
#[utoipa::path(post, path = "/api/auth/password/reset", tag = "identity", request_body = ResetRequest,
    responses((status = 204), (status = 400, description = "Invalid, spent or expired token", body = Problem),
              (status = 422, description = "Password rejected by the policy", body = Problem)))]
pub async fn reset_password(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    Json(body): Json<ResetRequest>,
) -> Result<StatusCode, Failure> {
    service
        .reset_password(&body.token, &body.new_password, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
