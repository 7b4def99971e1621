//! Orders: the buyer's, confirmation, and the admins' transitions and refunds.

use axum::extract::State;
use basalt_identity::auth::{Admin, Authenticated};
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::{Json, Path};
use uuid::Uuid;

use crate::model::{OrderBody, OrdersBody};
use crate::service::orders::{NewRefund, Reason};
use crate::service::payment::Confirmation;
use crate::service::{Caller, Shop, state};

/// The signed-in caller's orders, newest first.
#[utoipa::path(get, path = "/api/shop/orders", tag = "shop",
    responses((status = 200, body = OrdersBody), (status = 401, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn list_orders(
    State(shop): State<Shop>,
    who: Authenticated,
) -> Result<Json<OrdersBody>, Failure> {
    Ok(Json(OrdersBody {
        orders: shop.my_orders(who.user_id).await?,
    }))
}

/// One order with its history: the buyer's (by credentials, or the
/// `X-Cart-Token` of the cart it came from) or any, for admins.
#[utoipa::path(get, path = "/api/shop/orders/{id}", tag = "shop",
    params(("id" = Uuid, Path), ("X-Cart-Token" = Option<String>, Header)),
    responses((status = 200, body = OrderBody), (status = 404, body = Problem)))]
pub async fn get_order(
    State(shop): State<Shop>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<OrderBody>, Failure> {
    Ok(Json(OrderBody {
        order: shop.order(&caller, id).await?,
    }))
}

/// The buyer's client says the payment succeeded: checked with the
/// provider, then the order is marked paid (idempotent; races safely with
/// the provider's webhook).
#[utoipa::path(post, path = "/api/shop/orders/{id}/confirm", tag = "shop",
    params(("id" = Uuid, Path), ("X-Cart-Token" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key")), request_body = Confirmation,
    responses((status = 200, body = OrderBody), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn confirm(
    State(shop): State<Shop>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<Confirmation>,
) -> Result<Json<OrderBody>, Failure> {
    Ok(Json(OrderBody {
        order: shop.confirm(&caller, id, body).await?,
    }))
}

async fn move_to(
    shop: &Shop,
    admin: &Admin,
    id: Uuid,
    to: &'static str,
    body: &[u8],
) -> Result<Json<OrderBody>, Failure> {
    let reason = super::optional_json::<Reason>(body)?.reason;
    Ok(Json(OrderBody {
        order: shop
            .admin_transition(admin.0.user_id, id, to, reason)
            .await?,
    }))
}

/// Marks a paid order fulfilled (admins).
#[utoipa::path(post, path = "/api/shop/orders/{id}/fulfil", tag = "shop", params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key")),
    request_body(content = Reason, description = "optional"),
    responses((status = 200, body = OrderBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn fulfil(
    State(shop): State<Shop>,
    admin: Admin,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<OrderBody>, Failure> {
    move_to(&shop, &admin, id, state::FULFILLED, &body).await
}

/// Marks a fulfilled order shipped (admins); the buyer is mailed.
#[utoipa::path(post, path = "/api/shop/orders/{id}/ship", tag = "shop", params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key")),
    request_body(content = Reason, description = "optional"),
    responses((status = 200, body = OrderBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn ship(
    State(shop): State<Shop>,
    admin: Admin,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<OrderBody>, Failure> {
    move_to(&shop, &admin, id, state::SHIPPED, &body).await
}

/// Marks a shipped order delivered (admins).
#[utoipa::path(post, path = "/api/shop/orders/{id}/deliver", tag = "shop", params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key")),
    request_body(content = Reason, description = "optional"),
    responses((status = 200, body = OrderBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn deliver(
    State(shop): State<Shop>,
    admin: Admin,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<OrderBody>, Failure> {
    move_to(&shop, &admin, id, state::DELIVERED, &body).await
}

/// Cancels an unpaid order (admins): payment cancelled, stock back.
#[utoipa::path(post, path = "/api/shop/orders/{id}/cancel", tag = "shop", params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key")),
    request_body(content = Reason, description = "optional"),
    responses((status = 200, body = OrderBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn cancel(
    State(shop): State<Shop>,
    admin: Admin,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<OrderBody>, Failure> {
    move_to(&shop, &admin, id, state::CANCELLED, &body).await
}

/// Refunds part or all of a paid order through its provider (admins).
#[utoipa::path(post, path = "/api/shop/orders/{id}/refunds", tag = "shop", params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "Required: replays the first answer for the same key, so a retry never charges or refunds twice")),
    request_body = NewRefund,
    responses((status = 200, body = OrderBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn refund(
    State(shop): State<Shop>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Json(body): Json<NewRefund>,
) -> Result<Json<OrderBody>, Failure> {
    Ok(Json(OrderBody {
        order: shop.refund(admin.0.user_id, id, body).await?,
    }))
}
