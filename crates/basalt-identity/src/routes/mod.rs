//! The identity module's HTTP routes.

mod admin;
mod auth;
mod jwks;
mod me;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::IdentityService;

/// Every identity route, documented; errors are problem+json.
pub fn router(service: IdentityService) -> OpenApiRouter {
    let mut router = OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::csrf))
        .routes(routes!(auth::token))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::revoke))
        .routes(routes!(auth::list_sessions))
        .routes(routes!(auth::revoke_session))
        .routes(routes!(auth::logout_all))
        .routes(routes!(auth::verify_email))
        .routes(routes!(auth::resend_verification))
        .routes(routes!(auth::forgot_password))
        .routes(routes!(auth::reset_password))
        .routes(routes!(me::get_me, me::update_me, me::delete_me))
        .routes(routes!(me::change_password))
        .routes(routes!(admin::audit_log))
        .routes(routes!(admin::jobs))
        .routes(routes!(admin::set_role))
        .routes(routes!(jwks::jwks))
        .with_state(service);
    basalt_platform::http::docs::document_errors(
        router.get_openapi_mut(),
        &basalt_platform::http::docs::PROBLEM_ERRORS,
    );
    router
}
