//! The catalog: products with variants and prices per currency, search and
//! filters with cursor pagination, and the admin's changes.

use std::collections::HashMap;

use basalt_platform::db::unique_violation;
use basalt_platform::error::{Failure, FieldError};
use basalt_platform::http::input::has_control;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Shop, invalid, not_found};
use crate::model::{Product, Variant};
use crate::money::{Currency, Money};
use crate::store::catalog::{self as store, PriceRow, ProductFilter, ProductRow, VariantRow};

/// The most products on one page; 20 when not asked.
pub const MAX_PAGE: i64 = 100;

/// The catalog cursor of a product: pass it as `after` for the products
/// that follow it.
pub fn product_cursor(id: &Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// Lower-case letters, digits and dashes, 1 to 100 characters.
    pub slug: String,
    /// 1 to 200 characters.
    pub name: String,
    /// Markdown.
    #[serde(default)]
    pub description: String,
    /// Image URLs (http or https).
    #[serde(default)]
    pub images: Vec<String>,
    /// Visible to buyers (default true).
    #[serde(default = "yes")]
    pub published: bool,
    /// At least one.
    pub variants: Vec<NewVariant>,
}

fn yes() -> bool {
    true
}

/// A new variant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVariant {
    /// Unique across the shop: letters, digits, `-`, `_`, `.`, 1 to 64.
    pub sku: String,
    /// Option values (`{"size": "M"}`): strings only.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub options: serde_json::Map<String, serde_json::Value>,
    /// One price per currency, each at least 0.
    pub prices: Vec<Money>,
    /// Units on hand.
    pub stock: i64,
    /// Grams (weight-based shipping).
    #[serde(default)]
    pub weight_grams: i64,
}

/// A change to a variant; absent fields stay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantChange {
    /// Prices to set (other currencies stay).
    pub prices: Option<Vec<Money>>,
    /// A single price to set (same as a one-element `prices`).
    pub price: Option<Money>,
    /// The units on hand, counted.
    pub stock: Option<i64>,
}

/// The catalog's query string.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Words in the name or description (any case).
    pub q: Option<String>,
    /// Only products priced in this currency (needed by the price range).
    pub currency: Option<String>,
    /// Cheapest matching variant at least this (minor units).
    pub min_price: Option<i64>,
    /// Cheapest matching variant at most this (minor units).
    pub max_price: Option<i64>,
    /// `name:value`: a variant has this option value (`size:M`).
    pub option: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
}

impl Shop {
    /// Creates a product with its variants (an admin's call).
    pub async fn create_product(&self, new: NewProduct) -> Result<Product, Failure> {
        let errors = check_product(&new);
        if !errors.is_empty() {
            return Err(Failure::invalid(errors));
        }
        let product = ProductRow {
            id: Uuid::now_v7(),
            slug: new.slug,
            description_html: basalt_markdown::markdown_to_safe_html(&new.description),
            name: new.name.trim().to_owned(),
            description: new.description,
            images: serde_json::to_string(&new.images).unwrap_or_else(|_| "[]".into()),
            published: new.published,
            created_at: Utc::now(),
        };
        let variants: Vec<(VariantRow, Vec<PriceRow>)> = new
            .variants
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let id = Uuid::now_v7();
                let prices = v
                    .prices
                    .iter()
                    .map(|p| PriceRow {
                        variant_id: id,
                        currency: p.currency.as_str().to_owned(),
                        amount: p.amount,
                    })
                    .collect();
                let row = VariantRow {
                    id,
                    product_id: product.id,
                    sku: v.sku,
                    options: serde_json::Value::Object(v.options).to_string(),
                    weight_grams: v.weight_grams,
                    stock: v.stock,
                    position: i64::try_from(i).unwrap_or(i64::MAX),
                };
                (row, prices)
            })
            .collect();
        let mut tx = self.db.begin().await?;
        match store::insert_product(&mut tx, &product, &variants).await {
            Ok(()) => tx.commit().await?,
            Err(e) => {
                return Err(match unique_violation(&e) {
                    Some(what) if what.contains("slug") => invalid("slug", "is taken"),
                    Some(_) => invalid("variants", "a SKU is taken"),
                    None => e.into(),
                });
            }
        }
        self.product(&product.slug, true).await
    }

    /// A product by slug; unpublished ones only for admins.
    pub async fn product(&self, slug: &str, admin: bool) -> Result<Product, Failure> {
        let row = store::product_by_slug(&self.db, slug)
            .await?
            .filter(|p| admin || p.published)
            .ok_or_else(|| not_found("product"))?;
        Ok(self.render(vec![row]).await?.remove(0))
    }

    /// A page of the catalog, newest first, and the cursor of the next.
    pub async fn products(
        &self,
        query: &ProductQuery,
        admin: bool,
    ) -> Result<(Vec<Product>, Option<String>), Failure> {
        let filter = parse_query(query, admin)?;
        let limit = filter.limit;
        let rows = store::products(&self.db, &filter).await?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|p| product_cursor(&p.id)))
            .flatten();
        Ok((self.render(rows).await?, next))
    }

    /// Changes a variant's prices or stock (an admin's call).
    pub async fn update_variant(
        &self,
        sku: &str,
        change: VariantChange,
    ) -> Result<Variant, Failure> {
        let variant = store::variant_by_sku(&self.db, sku)
            .await?
            .ok_or_else(|| not_found("variant"))?;
        let mut prices = change.prices.unwrap_or_default();
        prices.extend(change.price);
        if prices.iter().any(|p| p.amount < 0) {
            return Err(invalid("prices", "must be at least 0"));
        }
        if change
            .stock
            .is_some_and(|s| !(0..=1_000_000_000).contains(&s))
        {
            return Err(invalid("stock", "must be from 0 to 1000000000"));
        }
        let mut tx = self.db.begin().await?;
        for p in &prices {
            let row = PriceRow {
                variant_id: variant.id,
                currency: p.currency.as_str().to_owned(),
                amount: p.amount,
            };
            store::upsert_price(&mut tx, &row).await?;
        }
        if let Some(stock) = change.stock {
            store::set_stock(&mut tx, variant.id, stock).await?;
        }
        tx.commit().await?;
        let variant = store::variant_by_sku(&self.db, sku)
            .await?
            .ok_or_else(|| not_found("variant"))?;
        let prices = store::prices_of(&self.db, &[variant.id]).await?;
        Ok(render_variant(&variant, &prices))
    }

    /// Products with their variants and prices: three statements whatever
    /// the page's size.
    async fn render(&self, rows: Vec<ProductRow>) -> Result<Vec<Product>, Failure> {
        let ids: Vec<Uuid> = rows.iter().map(|p| p.id).collect();
        let variants = store::variants_of(&self.db, &ids).await?;
        let variant_ids: Vec<Uuid> = variants.iter().map(|v| v.id).collect();
        let prices = store::prices_of(&self.db, &variant_ids).await?;
        let mut by_product: HashMap<Uuid, Vec<Variant>> = HashMap::new();
        for v in &variants {
            let mine: Vec<PriceRow> = prices
                .iter()
                .filter(|p| p.variant_id == v.id)
                .cloned()
                .collect();
            by_product
                .entry(v.product_id)
                .or_default()
                .push(render_variant(v, &mine));
        }
        Ok(rows
            .into_iter()
            .map(|p| Product {
                variants: by_product.remove(&p.id).unwrap_or_default(),
                id: p.id,
                slug: p.slug,
                name: p.name,
                description: p.description,
                description_html: p.description_html,
                images: serde_json::from_str(&p.images).unwrap_or_default(),
                published: p.published,
                created_at: p.created_at,
            })
            .collect())
    }
}

fn render_variant(v: &VariantRow, prices: &[PriceRow]) -> Variant {
    Variant {
        sku: v.sku.clone(),
        options: serde_json::from_str(&v.options).unwrap_or_default(),
        weight_grams: v.weight_grams,
        stock: v.stock,
        prices: prices
            .iter()
            .filter(|p| p.variant_id == v.id)
            .filter_map(|p| Some(Money::new(p.amount, Currency::parse(&p.currency).ok()?)))
            .collect(),
    }
}

fn parse_query(query: &ProductQuery, admin: bool) -> Result<ProductFilter, Failure> {
    let mut errors = Vec::new();
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        errors.push(FieldError::new("limit", "must be from 1 to 100"));
    }
    let currency = match query.currency.as_deref().map(Currency::parse) {
        Some(Err(_)) => {
            errors.push(FieldError::new("currency", "is not an ISO 4217 code"));
            None
        }
        other => other.and_then(Result::ok).map(|c| c.as_str().to_owned()),
    };
    if currency.is_none() && (query.min_price.is_some() || query.max_price.is_some()) {
        errors.push(FieldError::new("currency", "is needed with a price range"));
    }
    let before = match query.after.as_deref() {
        None => None,
        Some(text) => match URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|b| Uuid::from_slice(&b).ok())
        {
            Some(id) => Some(id),
            None => {
                errors.push(FieldError::new("after", "is not a cursor of this list"));
                None
            }
        },
    };
    let option = match query.option.as_deref() {
        None => None,
        Some(pair) => match pair.split_once(':') {
            Some((name, value)) if !name.is_empty() => {
                // As stored by serde_json: `"name":"value"`.
                let json = |s: &str| serde_json::Value::from(s).to_string();
                Some(format!(
                    "%{}:{}%",
                    like_escape(&json(name)),
                    like_escape(&json(value))
                ))
            }
            _ => {
                errors.push(FieldError::new("option", "is name:value"));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(Failure::invalid(errors));
    }
    let pattern = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| format!("%{}%", like_escape(&q.to_lowercase())));
    Ok(ProductFilter {
        published_only: !admin,
        pattern,
        currency,
        min_price: query.min_price,
        max_price: query.max_price,
        option,
        before,
        limit,
    })
}

/// `%` and `_` match literally (LIKE without ESCAPE has no escape: they
/// become the one-character wildcard, which still matches themselves).
fn like_escape(text: &str) -> String {
    text.replace(['%', '_'], "_")
}

fn check_product(new: &NewProduct) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let slug_ok = (1..=100).contains(&new.slug.len())
        && new
            .slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !slug_ok {
        errors.push(FieldError::new(
            "slug",
            "is 1 to 100 lower-case letters, digits and dashes",
        ));
    }
    if !(1..=200).contains(&new.name.trim().chars().count()) || has_control(&new.name) {
        errors.push(FieldError::new("name", "is 1 to 200 characters"));
    }
    if new.description.len() > 100_000 {
        errors.push(FieldError::new("description", "is at most 100000 bytes"));
    }
    let url_ok =
        |u: &String| (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 2000;
    if new.images.len() > 20 || !new.images.iter().all(url_ok) {
        errors.push(FieldError::new("images", "are at most 20 http(s) URLs"));
    }
    if new.variants.is_empty() || new.variants.len() > 100 {
        errors.push(FieldError::new("variants", "are 1 to 100"));
    }
    let mut skus = std::collections::HashSet::new();
    for (i, v) in new.variants.iter().enumerate() {
        let field = |f: &str| format!("variants[{i}].{f}");
        let sku_ok = (1..=64).contains(&v.sku.len())
            && v.sku
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !sku_ok || !skus.insert(v.sku.as_str()) {
            errors.push(FieldError::new(
                field("sku"),
                "is 1 to 64 letters, digits, '-', '_' or '.', unique",
            ));
        }
        if !v.options.values().all(serde_json::Value::is_string) || v.options.len() > 10 {
            errors.push(FieldError::new(
                field("options"),
                "are up to 10 text values",
            ));
        }
        let mut currencies = std::collections::HashSet::new();
        if v.prices.is_empty()
            || !v
                .prices
                .iter()
                .all(|p| p.amount >= 0 && currencies.insert(p.currency))
        {
            errors.push(FieldError::new(
                field("prices"),
                "are one or more amounts of at least 0, one per currency",
            ));
        }
        if !(0..=1_000_000_000).contains(&v.stock) {
            errors.push(FieldError::new(field("stock"), "is from 0 to 1000000000"));
        }
        if !(0..=1_000_000_000).contains(&v.weight_grams) {
            errors.push(FieldError::new(
                field("weight_grams"),
                "is from 0 to 1000000000",
            ));
        }
    }
    errors
}
