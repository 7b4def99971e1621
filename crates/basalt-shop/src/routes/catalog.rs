//! The catalog.

use axum::extract::State;
use axum::http::StatusCode;
use basalt_identity::auth::Admin;
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::{Json, Path, Query};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::model::{ProductBody, ProductsBody, VariantBody};
use crate::service::catalog::{NewProduct, ProductQuery, VariantChange};
use crate::service::{Caller, Shop};

/// `{"product": …}` to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewProductBody {
    /// The product.
    pub product: NewProduct,
}

/// Published products (admins also see unpublished ones), newest first,
/// searched and filtered, a page at a time.
#[utoipa::path(get, path = "/api/shop/products", tag = "shop", params(ProductQuery),
    responses((status = 200, body = ProductsBody), (status = 422, body = Problem)))]
pub async fn list_products(
    State(shop): State<Shop>,
    caller: Caller,
    Query(query): Query<ProductQuery>,
) -> Result<Json<ProductsBody>, Failure> {
    let (products, next_cursor) = shop.products(&query, caller.admin).await?;
    Ok(Json(ProductsBody {
        products,
        next_cursor,
    }))
}

/// One product by slug.
#[utoipa::path(get, path = "/api/shop/products/{slug}", tag = "shop", params(("slug" = String, Path)),
    responses((status = 200, body = ProductBody), (status = 404, body = Problem)))]
pub async fn get_product(
    State(shop): State<Shop>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<ProductBody>, Failure> {
    Ok(Json(ProductBody {
        product: shop.product(&slug, caller.admin).await?,
    }))
}

/// Creates a product with its variants (admins).
#[utoipa::path(post, path = "/api/shop/products", tag = "shop", request_body = NewProductBody,
    responses((status = 201, body = ProductBody), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn create_product(
    State(shop): State<Shop>,
    _admin: Admin,
    Json(body): Json<NewProductBody>,
) -> Result<(StatusCode, Json<ProductBody>), Failure> {
    let product = shop.create_product(body.product).await?;
    Ok((StatusCode::CREATED, Json(ProductBody { product })))
}

/// Changes a variant's prices or stock (admins).
#[utoipa::path(patch, path = "/api/shop/variants/{sku}", tag = "shop", params(("sku" = String, Path)),
    request_body = VariantChange,
    responses((status = 200, body = VariantBody), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn update_variant(
    State(shop): State<Shop>,
    _admin: Admin,
    Path(sku): Path<String>,
    Json(change): Json<VariantChange>,
) -> Result<Json<VariantBody>, Failure> {
    Ok(Json(VariantBody {
        variant: shop.update_variant(&sku, change).await?,
    }))
}
