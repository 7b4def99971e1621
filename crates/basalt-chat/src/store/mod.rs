//! The chat's tables, private to the module: rooms and members
//! ([`rooms`]), messages, reactions and mentions ([`messages`]), read
//! positions ([`reads`]). One SQL text serves SQLite and PostgreSQL.

pub mod messages;
pub mod reads;
pub mod rooms;
