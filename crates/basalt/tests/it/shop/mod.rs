//! The shop: catalog, carts, checkout, orders, payments, idempotency and
//! merchant webhooks, over HTTP against the real server.
mod payments;
mod paypal;
