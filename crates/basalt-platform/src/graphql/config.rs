//! The `[graphql]` section (`BASALT_GRAPHQL__*`).

use serde::{Deserialize, Serialize};

/// GraphQL endpoint settings: what a query may cost before it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphQlConfig {
    /// Whether the schema answers introspection (`__schema`, `__type`);
    /// `false` hides it from clients (GraphiQL then cannot help).
    pub introspection: bool,
    /// Deepest selection nesting a query may have (the standard
    /// introspection query of graphql-js, GraphiQL and gql is 15 deep).
    pub max_depth: usize,
    /// Highest complexity a query may have: every field counts 1, and a
    /// connection multiplies what it selects by its `first`.
    pub max_complexity: usize,
    /// Most aliased fields (and, separately, directives) a query may have.
    pub max_aliases: usize,
    /// Longest query text, in bytes.
    pub max_query_bytes: usize,
    /// Whether automatic persisted queries are accepted (kept in the cache:
    /// shared by every node when Redis is configured).
    pub persisted_queries: bool,
}

impl Default for GraphQlConfig {
    fn default() -> Self {
        Self {
            introspection: true,
            max_depth: 16,
            max_complexity: 20_000,
            max_aliases: 30,
            max_query_bytes: 16 * 1024,
            persisted_queries: true,
        }
    }
}

impl GraphQlConfig {
    /// The problems of this configuration, as `(key, problem)`.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if self.max_depth == 0 {
            return Err(("max_depth", "must be at least 1"));
        }
        if self.max_complexity == 0 {
            return Err(("max_complexity", "must be at least 1"));
        }
        if self.max_query_bytes < 64 {
            return Err(("max_query_bytes", "must be at least 64"));
        }
        Ok(())
    }
}
