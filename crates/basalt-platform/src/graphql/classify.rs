//! Every GraphQL error leaves with a stable `extensions.code`.
//!
//! - A module's error is a [`Failure`]; `impl From<Failure> for
//!   async_graphql::Error` gives it the code of its kind (`NOT_FOUND`,
//!   `BAD_USER_INPUT` with `fields`, `RATE_LIMITED` with `retryAfter`, …),
//!   so resolvers return `Result<T, Failure>` and use `?`.
//! - async-graphql's own errors get theirs here ([`Classify`]): a query that
//!   does not parse is `GRAPHQL_PARSE_FAILED`, one that breaks a limit
//!   `QUERY_TOO_COMPLEX`, one that does not validate against the schema
//!   `GRAPHQL_VALIDATION_FAILED`.
//! - An error raised while resolving without a code is a bug somewhere: it is
//!   logged and leaves as `INTERNAL`, with no message of its own.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextSubscribe,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensionValues, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use crate::error::Failure;

/// `extensions.code` of a query that does not parse.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// `extensions.code` of a query the schema refuses.
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// `extensions.code` of a query over a limit (size, aliases, depth, complexity).
pub const TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";

impl From<Failure> for async_graphql::Error {
    fn from(failure: Failure) -> Self {
        let mut error = async_graphql::Error::new(failure.graphql_message());
        let mut extensions = ErrorExtensionValues::default();
        for (name, value) in failure.graphql_extensions() {
            extensions.set(name, Value::from_json(value).unwrap_or(Value::Null));
        }
        error.extensions = Some(extensions);
        error
    }
}

/// A request-level error with `code` (before any resolver runs).
pub fn request_error(message: impl Into<String>, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    set_code(&mut error, code);
    error
}

fn set_code(error: &mut ServerError, code: &str) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

fn has_code(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

/// The messages of async-graphql's own limit checks.
fn is_limit(error: &ServerError) -> bool {
    let m = error.message.as_str();
    m.contains("nested too deep")
        || m.contains("too complex")
        || m.contains("directives")
        || m.contains("recursion limit")
}

/// The code of a query that failed to parse: over a limit, or malformed.
pub fn parse_failure_code(error: &ServerError) -> &'static str {
    if is_limit(error) {
        TOO_COMPLEX
    } else {
        PARSE_FAILED
    }
}

/// Gives an uncoded error from a resolver the `INTERNAL` code, logging it.
fn internal(mut error: ServerError) -> ServerError {
    if !has_code(&error) {
        tracing::error!(error = %error.message, path = ?error.path, "uncoded GraphQL resolver error");
        error.message = "internal error".into();
        error.source = None;
        set_code(&mut error, "INTERNAL");
    }
    error
}

fn classify_response(mut response: Response) -> Response {
    response.errors = response.errors.into_iter().map(internal).collect();
    response
}

/// The extension that codes async-graphql's own errors (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Classify;

impl ExtensionFactory for Classify {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Classify)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Classify {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut error| {
            if !has_code(&error) {
                let code = parse_failure_code(&error);
                set_code(&mut error, code);
            }
            error
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|mut error| {
                    if !has_code(&error) {
                        let code = if is_limit(&error) {
                            TOO_COMPLEX
                        } else {
                            VALIDATION_FAILED
                        };
                        set_code(&mut error, code);
                    }
                    error
                })
                .collect()
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        classify_response(next.run(ctx, operation_name).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(classify_response).boxed()
    }
}
