//! The shop's REST API under `/api/shop`, JSON in snake_case, errors as
//! problem+json. Each handler parses, calls one [`Shop`] method and renders.

use utoipa_axum::router::OpenApiRouter;

use crate::service::Shop;

/// Every documented shop route, with its state.
pub fn router(shop: Shop) -> OpenApiRouter {
    let mut router = OpenApiRouter::new().with_state(shop);
    basalt_platform::http::docs::document_errors(
        router.get_openapi_mut(),
        &basalt_platform::http::docs::PROBLEM_ERRORS,
    );
    router
}
