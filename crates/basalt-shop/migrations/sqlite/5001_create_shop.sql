-- The shop: catalog, carts, orders, reservations and discounts. Buyers and
-- admins are identity accounts, referenced by id only.
-- Money is always an integer amount in minor units with its ISO 4217 code.

CREATE TABLE shop_products (
    id BLOB PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    -- Markdown as written, and its sanitised HTML (basalt-markdown).
    description TEXT NOT NULL,
    description_html TEXT NOT NULL,
    -- A JSON array of image URLs.
    images TEXT NOT NULL,
    published INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT shop_products_slug_key UNIQUE (slug)
);

CREATE TABLE shop_variants (
    id BLOB PRIMARY KEY NOT NULL,
    product_id BLOB NOT NULL REFERENCES shop_products (id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    -- A JSON object of option values ({"size": "M", "colour": "red"}).
    options TEXT NOT NULL,
    weight_grams INTEGER NOT NULL DEFAULT 0,
    -- Units on hand and not reserved. Checkout takes units with one
    -- conditional decrement (service/inventory.rs); never negative.
    stock INTEGER NOT NULL,
    position INTEGER NOT NULL,
    CONSTRAINT shop_variants_sku_key UNIQUE (sku),
    CONSTRAINT shop_variants_stock_check CHECK (stock >= 0)
);
CREATE INDEX shop_variants_product_idx ON shop_variants (product_id, position);

CREATE TABLE shop_prices (
    variant_id BLOB NOT NULL REFERENCES shop_variants (id) ON DELETE CASCADE,
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (variant_id, currency)
);

CREATE TABLE shop_carts (
    id BLOB PRIMARY KEY NOT NULL,
    -- SHA-256 of an anonymous cart's token (the token itself is shown once).
    token_hash BLOB,
    -- A signed-in user's cart.
    user_id BLOB,
    currency TEXT NOT NULL,
    -- open | checked_out | merged
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX shop_carts_user_idx ON shop_carts (user_id, status);

CREATE TABLE shop_cart_items (
    cart_id BLOB NOT NULL REFERENCES shop_carts (id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (cart_id, sku)
);

-- One row: the last order number handed out. Checkout bumps it in the
-- transaction that inserts the order, so numbers have no gaps.
CREATE TABLE shop_order_counter (
    id INTEGER PRIMARY KEY,
    last_number INTEGER NOT NULL
);
INSERT INTO shop_order_counter (id, last_number) VALUES (1, 0);

CREATE TABLE shop_orders (
    id BLOB PRIMARY KEY NOT NULL,
    number INTEGER NOT NULL,
    -- pending_payment | paid | fulfilled | shipped | delivered | cancelled
    -- | refunded | partially_refunded (service/state.rs)
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    subtotal INTEGER NOT NULL,
    discount INTEGER NOT NULL,
    shipping INTEGER NOT NULL,
    tax INTEGER NOT NULL,
    total INTEGER NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0,
    email TEXT NOT NULL,
    -- JSON object.
    shipping_address TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_id TEXT,
    user_id BLOB,
    cart_id BLOB NOT NULL,
    discount_id BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT shop_orders_number_key UNIQUE (number),
    CONSTRAINT shop_orders_refund_check CHECK (refunded >= 0 AND refunded <= total)
);
CREATE INDEX shop_orders_user_idx ON shop_orders (user_id, number);
CREATE INDEX shop_orders_cart_idx ON shop_orders (cart_id);
CREATE UNIQUE INDEX shop_orders_payment_idx ON shop_orders (provider, provider_id);

CREATE TABLE shop_order_lines (
    order_id BLOB NOT NULL REFERENCES shop_orders (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    sku TEXT NOT NULL,
    product_name TEXT NOT NULL,
    options TEXT NOT NULL,
    -- The price when the order was placed.
    unit_amount INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    line_amount INTEGER NOT NULL,
    PRIMARY KEY (order_id, position)
);

CREATE TABLE shop_order_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BLOB NOT NULL REFERENCES shop_orders (id) ON DELETE CASCADE,
    from_status TEXT,
    to_status TEXT NOT NULL,
    at TEXT NOT NULL,
    -- A user id, or `system`, `provider:stripe`, …
    by_whom TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX shop_order_history_order_idx ON shop_order_history (order_id, id);

-- Stock held for an unpaid order; released (stock back) when it expires.
CREATE TABLE shop_reservations (
    order_id BLOB NOT NULL REFERENCES shop_orders (id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    -- Unix milliseconds (compared in queries).
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX shop_reservations_expiry_idx ON shop_reservations (expires_at_ms);

CREATE TABLE shop_refunds (
    id BLOB PRIMARY KEY NOT NULL,
    order_id BLOB NOT NULL REFERENCES shop_orders (id) ON DELETE CASCADE,
    amount INTEGER NOT NULL,
    provider_refund_id TEXT,
    by_whom TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE shop_discounts (
    id BLOB PRIMARY KEY NOT NULL,
    -- Stored in capitals; codes match whatever the case typed.
    code TEXT NOT NULL,
    -- percentage (value: whole percent 1..100) | fixed (value: minor units)
    kind TEXT NOT NULL,
    value INTEGER NOT NULL,
    currency TEXT NOT NULL,
    min_order INTEGER NOT NULL,
    usage_limit INTEGER,
    per_customer_limit INTEGER,
    -- Bumped by checkout with a conditional increment (used < limit).
    used INTEGER NOT NULL DEFAULT 0,
    starts_at TEXT,
    ends_at TEXT,
    created_at TEXT NOT NULL,
    CONSTRAINT shop_discounts_code_key UNIQUE (code)
);

-- Uses per customer (lower-cased e-mail), bumped like `used`.
CREATE TABLE shop_discount_customers (
    discount_id BLOB NOT NULL REFERENCES shop_discounts (id) ON DELETE CASCADE,
    customer TEXT NOT NULL,
    uses INTEGER NOT NULL,
    PRIMARY KEY (discount_id, customer)
);

CREATE TABLE shop_discount_redemptions (
    discount_id BLOB NOT NULL REFERENCES shop_discounts (id) ON DELETE CASCADE,
    order_id BLOB NOT NULL REFERENCES shop_orders (id) ON DELETE CASCADE,
    customer TEXT NOT NULL,
    amount INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (discount_id, order_id)
);
