//! The shop: catalog, carts, checkout, orders, payments, idempotency and
//! merchant webhooks, over HTTP against the real server.

mod buyers;
mod catalog;
mod checkout;
mod concurrency;
mod idempotency;
pub mod kit;
mod merchant_webhooks;
mod orders;
mod payments;
mod paypal;
mod provider_webhooks;
