//! The shop's idempotency keys: the platform's middleware
//! ([`basalt_platform::http::idempotency`], Stripe's semantics, stored in
//! the database) with the shop's caller scope and the routes that require a
//! key.
//!
//! The mechanism is the platform's because nothing in it is about the shop:
//! any module's mutating routes can use it, and its table and purge job
//! (migration 1201, `platform.purge_idempotency_keys`) exist once.
//!
//! **Whose key.** A key belongs to, in this order:
//! 1. the signed-in user (`user:<id>`: a bearer token or a session, as the
//!    identity module authenticates it), whatever device or cart;
//! 2. else the anonymous cart (`cart:<SHA-256 of X-Cart-Token>`): the token
//!    is unguessable, so only its holder is that caller;
//! 3. else the client address (`client:<ip>`, as the trusted proxies let the
//!    platform see it). Anonymous callers without a cart share this scope
//!    with others behind the same address; keys are random (UUIDs), so they
//!    still do not meet.
//!
//! Invalid credentials name no caller: such a request passes through
//! without idempotency, and the handler refuses it (401).

use axum::http::request::Parts;
use basalt_identity::auth::{Intent, authenticate};
use basalt_identity::service::IdentityService;
use basalt_platform::db::Db;
use basalt_platform::http::client_addr::ClientAddr;
use basalt_platform::http::idempotency::{CallerScope, Idempotency, IdempotencySettings};
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::config::IdempotencyConfig;

/// The header that addresses an anonymous cart.
pub const CART_TOKEN_HEADER: &str = "x-cart-token";

/// The routes whose `POST` must carry an `Idempotency-Key` (checkout and
/// refunds: the two that move money).
pub const REQUIRED_ON: &[&str] = &[
    "/api/shop/carts/{id}/checkout",
    "/api/shop/orders/{id}/refunds",
];

/// The shop's scope: user, else cart token, else client address.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShopCallerScope;

impl CallerScope for ShopCallerScope {
    fn scope<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            if let Some(identity) = parts.extensions.get::<IdentityService>() {
                match authenticate(identity, parts, Intent::Write).await {
                    Ok(Some(who)) => return Some(format!("user:{}", who.user_id)),
                    Ok(None) => {}
                    Err(_) => return None,
                }
            }
            if let Some(token) = parts
                .headers
                .get(CART_TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|t| !t.is_empty())
            {
                return Some(format!(
                    "cart:{}",
                    hex::encode(Sha256::digest(token.as_bytes()))
                ));
            }
            ClientAddr::of(&parts.extensions).map(|client| format!("client:{}", client.ip))
        })
    }
}

/// The shop's idempotency middleware: keys in `db`, scoped by
/// [`ShopCallerScope`], required on [`REQUIRED_ON`]. Apply it with
/// [`Idempotency::wrap`] to a router whose routes are all added.
pub fn idempotency(db: Db, config: &IdempotencyConfig) -> Idempotency {
    Idempotency::new(db, ShopCallerScope, settings(config)).require_on(REQUIRED_ON)
}

/// The platform's settings from the `[shop.idempotency]` section.
pub fn settings(config: &IdempotencyConfig) -> IdempotencySettings {
    IdempotencySettings {
        ttl: std::time::Duration::from_secs(config.ttl_secs),
        lease: std::time::Duration::from_secs(config.lease_secs),
        ..IdempotencySettings::default()
    }
}
