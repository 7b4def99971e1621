//! What a query may cost, checked before any resolver (and so any SQL) runs.
//!
//! async-graphql checks depth and complexity while validating (configured in
//! [`super::configure`]); this extension adds the two checks it lacks, as
//! the query is parsed: the query text's size, and the number of aliased
//! fields (a thousand aliases of one expensive field cost a thousand times
//! the field, in one small request).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerResult, Variables};

use super::GraphQlConfig;
use super::classify::{TOO_COMPLEX, request_error};

/// The parse-time limits (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    max_query_bytes: usize,
    max_aliases: usize,
}

impl From<&GraphQlConfig> for Limits {
    fn from(config: &GraphQlConfig) -> Self {
        Self {
            max_query_bytes: config.max_query_bytes,
            max_aliases: config.max_aliases,
        }
    }
}

impl Limits {
    /// Refuses a query text over the size limit, before it is parsed.
    pub fn check_size(&self, query: &str) -> ServerResult<()> {
        if query.len() > self.max_query_bytes {
            return Err(request_error(
                format!(
                    "the query is {} bytes long; at most {} are accepted",
                    query.len(),
                    self.max_query_bytes
                ),
                TOO_COMPLEX,
            ));
        }
        Ok(())
    }

    /// Refuses a document with too many aliased fields.
    pub fn check_aliases(&self, document: &ExecutableDocument) -> ServerResult<()> {
        let aliases = document
            .operations
            .iter()
            .map(|(_, op)| aliases_in(&op.node.selection_set.node))
            .chain(
                document
                    .fragments
                    .values()
                    .map(|f| aliases_in(&f.node.selection_set.node)),
            )
            .sum::<usize>();
        if aliases > self.max_aliases {
            return Err(request_error(
                format!(
                    "the query has {aliases} aliases; at most {} are accepted",
                    self.max_aliases
                ),
                TOO_COMPLEX,
            ));
        }
        Ok(())
    }
}

fn aliases_in(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(field) => {
                usize::from(field.node.alias.is_some()) + aliases_in(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => aliases_in(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Limits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        self.check_size(query)?;
        let document = next.run(ctx, query, variables).await?;
        self.check_aliases(&document)?;
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::from(&GraphQlConfig::default())
    }

    #[test]
    fn aliases_are_counted_in_operations_fragments_and_inline_fragments() {
        let doc = async_graphql::parser::parse_query(
            "query { a: tags b: tags ... on Query { c: tags } ...F } fragment F on Query { d: tags e: viewer { f: username } }",
        )
        .expect("parses");
        let limits = Limits {
            max_aliases: 6,
            ..limits()
        };
        assert!(limits.check_aliases(&doc).is_ok());
        let limits = Limits {
            max_aliases: 5,
            ..limits
        };
        let error = limits.check_aliases(&doc).expect_err("six aliases");
        assert!(error.message.contains("6 aliases"), "{}", error.message);
    }

    #[test]
    fn a_long_query_is_refused_before_parsing() {
        let limits = Limits {
            max_query_bytes: 10,
            ..limits()
        };
        assert!(limits.check_size("{ tags }").is_ok());
        assert!(limits.check_size("{ tags tags }").is_err());
    }
}
