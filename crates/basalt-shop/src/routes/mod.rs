//! The shop's REST API under `/api/shop`, JSON in snake_case, errors as
//! problem+json. Each handler parses, calls one [`Shop`] method and renders.

mod carts;
mod catalog;
mod discounts;
mod orders;
mod provider_webhooks;

use axum::http::request::Parts;
use basalt_identity::auth::MaybeAuthenticated;
use basalt_identity::model::Role;
use basalt_platform::error::{Failure, FieldError};
use basalt_platform::http::input::{JsonInputError, has_escaped_nul, nul_field_path};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::idempotency::CART_TOKEN_HEADER;
use crate::merchant_webhooks::{self, MerchantWebhooks};
use crate::service::{Caller, Shop};

/// Every documented shop route, with its state, behind the idempotency
/// middleware ([`crate::idempotency`]): add routes *above* the `wrap`, or
/// they go without it.
pub fn router(shop: Shop, webhooks: MerchantWebhooks) -> OpenApiRouter {
    let idempotency = crate::idempotency::idempotency(shop.db.clone(), &shop.config.idempotency);
    let router = OpenApiRouter::new()
        .routes(routes!(catalog::list_products, catalog::create_product))
        .routes(routes!(catalog::get_product))
        .routes(routes!(catalog::update_variant))
        .routes(routes!(carts::create_cart))
        .routes(routes!(carts::get_cart))
        .routes(routes!(carts::add_item))
        .routes(routes!(carts::checkout))
        .routes(routes!(orders::list_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::confirm))
        .routes(routes!(orders::fulfil))
        .routes(routes!(orders::ship))
        .routes(routes!(orders::deliver))
        .routes(routes!(orders::cancel))
        .routes(routes!(orders::refund))
        .routes(routes!(discounts::create_discount))
        .routes(routes!(provider_webhooks::stripe_webhook))
        .routes(routes!(provider_webhooks::paypal_webhook))
        .with_state(shop)
        .merge(merchant_webhooks::routes::router(webhooks));
    let mut router = idempotency.wrap(router);
    basalt_platform::http::docs::document_errors(
        router.get_openapi_mut(),
        &basalt_platform::http::docs::PROBLEM_ERRORS,
    );
    router
}

/// A JSON body that may be left out (empty means the defaults). Like the
/// platform's `Json` extractor, an escaped NUL is a 422 naming its field
/// and bad JSON a 400.
pub(crate) fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if has_escaped_nul(body)
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(field) = nul_field_path(&value)
    {
        return Err(Failure::invalid(vec![FieldError::new(
            field,
            JsonInputError::NUL_MESSAGE,
        )]));
    }
    serde_json::from_slice(body)
        .map_err(|e| Failure::bad_request(format!("invalid JSON body: {e}")))
}

/// The caller of a shop request: optional credentials and `X-Cart-Token`.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let who = MaybeAuthenticated::from_request_parts(parts, state)
            .await?
            .0;
        let cart_token = parts
            .headers
            .get(CART_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Caller {
            user_id: who.as_ref().map(|w| w.user_id),
            admin: who.is_some_and(|w| w.role == Role::Admin),
            cart_token,
        })
    }
}
