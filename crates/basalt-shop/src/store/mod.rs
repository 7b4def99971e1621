//! The shop's tables (migration 5001), one SQL text for both databases.
//! Functions taking a [`basalt_platform::db::Tx`] run inside the caller's
//! transaction; the others take a pooled connection.

pub mod carts;
pub mod catalog;
pub mod discounts;
pub mod inventory;
pub mod orders;
pub mod provider_events;
