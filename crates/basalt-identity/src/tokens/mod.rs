//! Access tokens: EdDSA-signed JWTs ([`jwt`]) and the rotating keys that
//! sign them ([`keys`]). Refresh tokens are opaque and live in
//! [`crate::store::refresh_tokens`]; their rotation is in the service.

pub mod jwt;
pub mod keys;
