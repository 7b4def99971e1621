//! The shop's queries.

use async_graphql::{Context, ID, Object};
use basalt_platform::error::Failure;

use super::types::{Cart, Delivery, Order, Product, ProductConnection, page_cost};
use super::{admin, caller, shop, uuid, webhooks};
use crate::service::catalog::ProductQuery;

/// The shop's queries.
#[derive(Debug, Default)]
pub struct ShopQuery;

#[Object]
impl ShopQuery {
    /// Published products (admins also see unpublished ones), newest
    /// first, searched and filtered, a page at a time (`first`: 1 to 100,
    /// default 20; `after`: a cursor of the previous page).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Words in the name or description (any case).")] q: Option<String>,
        #[graphql(desc = "Only products priced in this currency.")] currency: Option<String>,
        #[graphql(desc = "Cheapest matching variant at least this (minor units).")]
        min_price: Option<i64>,
        #[graphql(desc = "Cheapest matching variant at most this (minor units).")]
        max_price: Option<i64>,
        #[graphql(desc = "`name:value`: a variant has this option value (`size:M`).")]
        option: Option<String>,
        first: Option<i64>,
        after: Option<String>,
    ) -> Result<ProductConnection, Failure> {
        let query = ProductQuery {
            q,
            currency,
            min_price,
            max_price,
            option,
            limit: first,
            after,
        };
        let admin = caller(ctx, None).admin;
        let (products, next) = shop(ctx)?.products(&query, admin).await?;
        Ok(ProductConnection::new(products, next))
    }

    /// One product by slug (`NOT_FOUND` if there is none, or it is
    /// unpublished and the caller no admin).
    async fn product(&self, ctx: &Context<'_>, slug: String) -> Result<Product, Failure> {
        let admin = caller(ctx, None).admin;
        Ok(shop(ctx)?.product(&slug, admin).await?.into())
    }

    /// A cart: the caller's own, or an anonymous one by its token
    /// (`cartToken`, else the `X-Cart-Token` header).
    async fn cart(
        &self,
        ctx: &Context<'_>,
        id: ID,
        cart_token: Option<String>,
    ) -> Result<Cart, Failure> {
        let id = uuid("id", &id, "cart")?;
        let caller = caller(ctx, cart_token);
        Ok(shop(ctx)?.cart(&caller, id).await?.into())
    }

    /// The signed-in caller's orders, newest first, with their history.
    async fn my_orders(&self, ctx: &Context<'_>) -> Result<Vec<Order>, Failure> {
        let who = basalt_identity::graphql::signed_in(ctx)?.user_id;
        let orders = shop(ctx)?.my_orders(who).await?;
        Ok(orders.into_iter().map(Into::into).collect())
    }

    /// One order with its history: the buyer's (by credentials, or the
    /// token of the cart it came from) or any, for admins.
    async fn order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        cart_token: Option<String>,
    ) -> Result<Order, Failure> {
        let id = uuid("id", &id, "order")?;
        let caller = caller(ctx, cart_token);
        Ok(shop(ctx)?.order(&caller, id).await?.into())
    }

    /// A webhook endpoint's deliveries, newest first (at most 100), each
    /// with every attempt (admins).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint: ID,
    ) -> Result<Vec<Delivery>, Failure> {
        admin(ctx)?;
        let id = uuid("endpoint", &endpoint, "webhook endpoint")?;
        let deliveries = webhooks(ctx)?.deliveries(id).await?;
        Ok(deliveries.into_iter().map(Into::into).collect())
    }
}
