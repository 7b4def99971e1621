//! The shop's REST API under `/api/shop`, JSON in snake_case, errors as
//! problem+json. Each handler parses, calls one [`Shop`] method and renders.

use utoipa_axum::router::OpenApiRouter;

use crate::merchant_webhooks::{self, MerchantWebhooks};
use crate::service::Shop;

/// Every documented shop route, with its state, behind the idempotency
/// middleware ([`crate::idempotency`]): add routes *above* the `wrap`, or
/// they go without it.
pub fn router(shop: Shop, webhooks: MerchantWebhooks) -> OpenApiRouter {
    let idempotency = crate::idempotency::idempotency(shop.db.clone(), &shop.config.idempotency);
    let router = OpenApiRouter::new()
        .with_state(shop)
        .merge(merchant_webhooks::routes::router(webhooks));
    let mut router = idempotency.wrap(router);
    basalt_platform::http::docs::document_errors(
        router.get_openapi_mut(),
        &basalt_platform::http::docs::PROBLEM_ERRORS,
    );
    router
}
