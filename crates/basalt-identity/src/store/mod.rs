//! Repositories: the identity module's SQL, each query written once for
//! SQLite and PostgreSQL.

pub mod audit;
pub mod email_tokens;
pub mod redis_sessions;
pub mod refresh_tokens;
pub mod sessions;
pub mod sign_ins;
pub mod users;
