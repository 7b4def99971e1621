//! Products, variants and prices.

use basalt_platform::db::{Db, Tx, in_list};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A product as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    /// Id (UUID v7: newest sorts last).
    pub id: Uuid,
    /// Unique slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Markdown.
    pub description: String,
    /// Its sanitised HTML.
    pub description_html: String,
    /// JSON array of URLs.
    pub images: String,
    /// Published.
    pub published: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A variant as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VariantRow {
    /// Id.
    pub id: Uuid,
    /// Its product.
    pub product_id: Uuid,
    /// Unique SKU.
    pub sku: String,
    /// JSON object.
    pub options: String,
    /// Grams.
    pub weight_grams: i64,
    /// Units available.
    pub stock: i64,
    /// Order within the product.
    pub position: i64,
}

/// A price as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PriceRow {
    /// The variant.
    pub variant_id: Uuid,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
}

/// What a catalog page is filtered by; `None` filters nothing.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    /// Only published products.
    pub published_only: bool,
    /// `%word%`, lower case, matched against name and description.
    pub pattern: Option<String>,
    /// Only products with a variant priced in this currency…
    pub currency: Option<String>,
    /// …at least this much…
    pub min_price: Option<i64>,
    /// …and at most this much.
    pub max_price: Option<i64>,
    /// Only products with a variant whose options contain this text
    /// (`"size":"M"`, as stored).
    pub option: Option<String>,
    /// Start below this id (the cursor).
    pub before: Option<Uuid>,
    /// Page size.
    pub limit: i64,
}

/// Inserts a product with its variants and prices, in one transaction.
pub async fn insert_product(
    tx: &mut Tx,
    product: &ProductRow,
    variants: &[(VariantRow, Vec<PriceRow>)],
) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_products (id, slug, name, description, description_html, images, published, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(product.id)
        .bind(&product.slug)
        .bind(&product.name)
        .bind(&product.description)
        .bind(&product.description_html)
        .bind(&product.images)
        .bind(product.published)
        .bind(product.created_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    for (variant, prices) in variants {
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO shop_variants (id, product_id, sku, options, weight_grams, stock, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(variant.id)
            .bind(variant.product_id)
            .bind(&variant.sku)
            .bind(&variant.options)
            .bind(variant.weight_grams)
            .bind(variant.stock)
            .bind(variant.position)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        for price in prices {
            upsert_price(tx, price).await?;
        }
    }
    Ok(())
}

/// Sets a variant's price in one currency.
pub async fn upsert_price(tx: &mut Tx, price: &PriceRow) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_prices (variant_id, currency, amount) VALUES ($1, $2, $3) \
             ON CONFLICT (variant_id, currency) DO UPDATE SET amount = excluded.amount",
        )
        .bind(price.variant_id)
        .bind(&price.currency)
        .bind(price.amount)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Sets a variant's stock (an admin's count).
pub async fn set_stock(tx: &mut Tx, variant_id: Uuid, stock: i64) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query("UPDATE shop_variants SET stock = $1 WHERE id = $2")
            .bind(stock)
            .bind(variant_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A product by slug.
pub async fn product_by_slug(db: &Db, slug: &str) -> Result<Option<ProductRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT id, slug, name, description, description_html, images, published, created_at \
             FROM shop_products WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(conn)
        .await
    })
}

/// A page of products, newest first.
pub async fn products(db: &Db, filter: &ProductFilter) -> Result<Vec<ProductRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT p.id, p.slug, p.name, p.description, p.description_html, p.images, p.published, p.created_at \
             FROM shop_products p \
             WHERE ($1 = FALSE OR p.published = TRUE) \
             AND ($2 IS NULL OR LOWER(p.name) LIKE $2 OR LOWER(p.description) LIKE $2) \
             AND ($3 IS NULL OR p.id < $3) \
             AND ($4 IS NULL OR EXISTS ( \
                 SELECT 1 FROM shop_variants v JOIN shop_prices pr ON pr.variant_id = v.id \
                 WHERE v.product_id = p.id AND pr.currency = $4 \
                 AND ($5 IS NULL OR pr.amount >= $5) AND ($6 IS NULL OR pr.amount <= $6))) \
             AND ($7 IS NULL OR EXISTS ( \
                 SELECT 1 FROM shop_variants v WHERE v.product_id = p.id AND v.options LIKE $7)) \
             ORDER BY p.id DESC LIMIT $8",
        )
        .bind(filter.published_only)
        .bind(filter.pattern.as_deref())
        .bind(filter.before)
        .bind(filter.currency.as_deref())
        .bind(filter.min_price)
        .bind(filter.max_price)
        .bind(filter.option.as_deref())
        .bind(filter.limit)
        .fetch_all(conn)
        .await
    })
}

/// The variants of these products, in order.
pub async fn variants_of(db: &Db, products: &[Uuid]) -> Result<Vec<VariantRow>, sqlx::Error> {
    if products.is_empty() {
        return Ok(Vec::new());
    }
    let ids = in_list::padded(products);
    let sql = in_list::expand(
        "SELECT id, product_id, sku, options, weight_grams, stock, position \
         FROM shop_variants WHERE product_id IN ({list}) ORDER BY product_id, position",
        1,
        &[ids.len()],
    );
    with_conn!(db, |conn| {
        let mut query = sqlx::query_as(sql);
        for id in &ids {
            query = query.bind(*id);
        }
        query.fetch_all(conn).await
    })
}

/// The prices of these variants.
pub async fn prices_of(db: &Db, variants: &[Uuid]) -> Result<Vec<PriceRow>, sqlx::Error> {
    if variants.is_empty() {
        return Ok(Vec::new());
    }
    let ids = in_list::padded(variants);
    let sql = in_list::expand(
        "SELECT variant_id, currency, amount FROM shop_prices WHERE variant_id IN ({list}) \
         ORDER BY variant_id, currency",
        1,
        &[ids.len()],
    );
    with_conn!(db, |conn| {
        let mut query = sqlx::query_as(sql);
        for id in &ids {
            query = query.bind(*id);
        }
        query.fetch_all(conn).await
    })
}

/// A variant by SKU.
pub async fn variant_by_sku(db: &Db, sku: &str) -> Result<Option<VariantRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT id, product_id, sku, options, weight_grams, stock, position \
             FROM shop_variants WHERE sku = $1",
        )
        .bind(sku)
        .fetch_optional(conn)
        .await
    })
}

/// A priced line: what checkout and carts need of a variant in one currency.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PricedVariant {
    /// SKU.
    pub sku: String,
    /// JSON object.
    pub options: String,
    /// Grams.
    pub weight_grams: i64,
    /// Units available when read (checkout's early refusal; the guard is
    /// the conditional decrement).
    pub stock: i64,
    /// Its product's slug.
    pub product_slug: String,
    /// Its product's name.
    pub product_name: String,
    /// Whether the product is published.
    pub published: bool,
    /// The price in the asked currency, if it has one.
    pub amount: Option<i64>,
}

/// These SKUs with their price in `currency`.
pub async fn priced(
    db: &Db,
    skus: &[String],
    currency: &str,
) -> Result<Vec<PricedVariant>, sqlx::Error> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let list = in_list::padded(skus);
    let sql = in_list::expand(
        "SELECT v.sku, v.options, v.weight_grams, v.stock, p.slug AS product_slug, \
         p.name AS product_name, p.published, pr.amount \
         FROM shop_variants v JOIN shop_products p ON p.id = v.product_id \
         LEFT JOIN shop_prices pr ON pr.variant_id = v.id AND pr.currency = $1 \
         WHERE v.sku IN ({list})",
        2,
        &[list.len()],
    );
    with_conn!(db, |conn| {
        let mut query = sqlx::query_as(sql).bind(currency);
        for sku in &list {
            query = query.bind(sku);
        }
        query.fetch_all(conn).await
    })
}
