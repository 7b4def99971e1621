//! Discount codes.

use axum::extract::State;
use axum::http::StatusCode;
use basalt_identity::auth::Admin;
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::Json;

use crate::model::DiscountBody;
use crate::service::Shop;
use crate::service::discounts::NewDiscount;

/// Creates a discount code (admins).
#[utoipa::path(post, path = "/api/shop/discounts", tag = "shop", request_body = NewDiscount,
    responses((status = 201, body = DiscountBody), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn create_discount(
    State(shop): State<Shop>,
    _admin: Admin,
    Json(body): Json<NewDiscount>,
) -> Result<(StatusCode, Json<DiscountBody>), Failure> {
    let discount = shop.create_discount(body).await?;
    Ok((StatusCode::CREATED, Json(DiscountBody { discount })))
}
