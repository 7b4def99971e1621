//! The shop: catalog, carts, checkout, orders, payments, idempotency and
//! merchant webhooks, over HTTP against the real server.
mod buyers;
mod catalog;
mod checkout;
mod concurrency;
mod kit;
mod orders;
mod payments;
mod paypal;
mod provider_webhooks;
