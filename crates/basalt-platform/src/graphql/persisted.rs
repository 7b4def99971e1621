//! Automatic persisted queries (Apollo's APQ protocol).
//!
//! A client sends `extensions.persistedQuery.sha256Hash` with no query; if
//! the server knows the hash, it runs the query it stands for, otherwise it
//! answers `PersistedQueryNotFound` and the client sends the query with its
//! hash once, which registers it. Queries are kept in the cache port, so on a
//! cluster with Redis a query registered through one node is known to all.
//! A registered query is checked against its hash: nobody can register a
//! query under another query's hash.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Request, ServerError, Value};
use sha2::{Digest, Sha256};

use super::classify::request_error;
use crate::cache::Cache;

/// How long a registered query is kept without use (re-registered after).
const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
/// The message clients look for to send the full query.
pub const NOT_FOUND: &str = "PersistedQueryNotFound";

/// The persisted queries of every node, in the cache.
#[derive(Clone)]
pub struct PersistedQueries {
    cache: Arc<dyn Cache>,
}

impl std::fmt::Debug for PersistedQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistedQueries").finish_non_exhaustive()
    }
}

fn key(hash: &str) -> String {
    format!("graphql.apq:{hash}")
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl PersistedQueries {
    /// Persisted queries kept in `cache`.
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self { cache }
    }

    /// Fills in the query of a request that names one by hash, or registers
    /// the query a request sends with its hash. A request without the
    /// extension is left alone.
    pub async fn resolve(&self, request: &mut Request) -> Result<(), ServerError> {
        let Some(Value::Object(persisted)) = request.extensions.get("persistedQuery") else {
            return Ok(());
        };
        let hash = match (persisted.get("version"), persisted.get("sha256Hash")) {
            (Some(Value::Number(v)), Some(Value::String(hash))) if v.as_i64() == Some(1) => {
                hash.to_ascii_lowercase()
            }
            _ => {
                return Err(request_error(
                    "persistedQuery needs version 1 and a sha256Hash",
                    "BAD_USER_INPUT",
                ));
            }
        };
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(request_error(
                "sha256Hash must be 64 hexadecimal digits",
                "BAD_USER_INPUT",
            ));
        }
        if request.query.is_empty() {
            let stored = self.cache.get(&key(&hash)).await;
            match stored.and_then(|bytes| String::from_utf8(bytes).ok()) {
                Some(query) => {
                    request.query = query;
                    Ok(())
                }
                None => Err(request_error(NOT_FOUND, "PERSISTED_QUERY_NOT_FOUND")),
            }
        } else if sha256_hex(&request.query) == hash {
            self.cache
                .put(&key(&hash), request.query.clone().into_bytes(), KEEP_FOR)
                .await;
            Ok(())
        } else {
            Err(request_error(
                "provided sha does not match query",
                "BAD_USER_INPUT",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
