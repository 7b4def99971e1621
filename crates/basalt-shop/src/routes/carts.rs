//! Carts and checkout.

use axum::extract::State;
use axum::http::StatusCode;
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::{Json, Path};
use uuid::Uuid;

use crate::model::{CartBody, OrderBody};
use crate::service::cart::{NewCart, NewItem};
use crate::service::checkout::CheckoutRequest;
use crate::service::{Caller, Shop};

/// A new anonymous cart with its token; signed in, the caller's cart,
/// into which the anonymous cart of an `X-Cart-Token` sent along is merged.
#[utoipa::path(post, path = "/api/shop/carts", tag = "shop", request_body(content = NewCart, description = "optional"),
    params(("X-Cart-Token" = Option<String>, Header, description = "an anonymous cart to merge (signed in)")),
    responses((status = 201, body = CartBody), (status = 422, body = Problem)))]
pub async fn create_cart(
    State(shop): State<Shop>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CartBody>), Failure> {
    let new: NewCart = super::optional_json(&body)?;
    let cart = shop.create_cart(&caller, new).await?;
    Ok((StatusCode::CREATED, Json(CartBody { cart })))
}

/// A cart: the caller's own, or an anonymous one by its `X-Cart-Token`.
#[utoipa::path(get, path = "/api/shop/carts/{id}", tag = "shop",
    params(("id" = Uuid, Path), ("X-Cart-Token" = Option<String>, Header)),
    responses((status = 200, body = CartBody), (status = 404, body = Problem)))]
pub async fn get_cart(
    State(shop): State<Shop>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<CartBody>, Failure> {
    Ok(Json(CartBody {
        cart: shop.cart(&caller, id).await?,
    }))
}

/// Adds units of a SKU to the cart.
#[utoipa::path(post, path = "/api/shop/carts/{id}/items", tag = "shop",
    params(("id" = Uuid, Path), ("X-Cart-Token" = Option<String>, Header)), request_body = NewItem,
    responses((status = 200, body = CartBody), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn add_item(
    State(shop): State<Shop>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(item): Json<NewItem>,
) -> Result<Json<CartBody>, Failure> {
    Ok(Json(CartBody {
        cart: shop.add_item(&caller, id, item).await?,
    }))
}

/// Places the order: stock reserved, totals computed here, payment
/// created at the provider. Out of stock is a 409.
#[utoipa::path(post, path = "/api/shop/carts/{id}/checkout", tag = "shop",
    params(("id" = Uuid, Path), ("X-Cart-Token" = Option<String>, Header)), request_body = CheckoutRequest,
    responses((status = 201, body = OrderBody), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn checkout(
    State(shop): State<Shop>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(request): Json<CheckoutRequest>,
) -> Result<(StatusCode, Json<OrderBody>), Failure> {
    let order = shop.checkout(&caller, id, request).await?;
    Ok((StatusCode::CREATED, Json(OrderBody { order })))
}
