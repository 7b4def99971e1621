//! `POST /graphql` and `GET /graphql` (queries only; a WebSocket upgrade on
//! the same path goes to [`super::ws`]).
//!
//! A request is refused before it runs when its body is not a GraphQL
//! request, when it is a mutation sent over GET (405), or when its
//! credentials are refused ([`super::Prepare`]: 401, or 403 for a
//! cookie-authenticated mutation without the CSRF token): the status is the
//! refusal's and the body a GraphQL error with its `extensions.code`. A
//! request that runs answers 200, whatever its resolvers' errors (they are
//! in `errors`, each with its code), unless the client asked for
//! `application/graphql-response+json` and the request failed before
//! running (400), as the GraphQL-over-HTTP draft says.

use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Executor, Request, Response as GqlResponse, ServerError};
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::classify::{
    PARSE_FAILED, TOO_COMPLEX, VALIDATION_FAILED, parse_failure_code, request_error,
};
use super::persisted::PersistedQueries;
use super::{Access, Prepare};
use crate::error::Failure;

/// The GraphQL-over-HTTP media type.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// What the `/graphql` handlers share.
pub(super) struct Endpoint<E> {
    pub(super) executor: E,
    pub(super) prepare: Arc<dyn Prepare>,
    pub(super) persisted: Option<PersistedQueries>,
    pub(super) limits: super::limits::Limits,
    pub(super) max_query_bytes: usize,
    pub(super) stop: tokio_util::sync::CancellationToken,
    pub(super) metrics: super::metrics::GraphQlMetrics,
}

/// `POST /graphql` with an `application/json` body.
pub(super) async fn post<E: Executor + Clone>(
    State(endpoint): State<Arc<Endpoint<E>>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if !is_json(&parts.headers) {
        return refusal(
            &parts.headers,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            request_error(
                "send the GraphQL request as application/json",
                "BAD_REQUEST",
            ),
        );
    }
    // The platform's body limit stops an oversized body while it is read.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refusal(
                &parts.headers,
                StatusCode::PAYLOAD_TOO_LARGE,
                request_error("the request body is too large", "BAD_REQUEST"),
            );
        }
    };
    let request = match serde_json::from_slice::<Request>(&bytes) {
        Ok(request) => request,
        Err(error) => {
            return refusal(
                &parts.headers,
                StatusCode::BAD_REQUEST,
                request_error(
                    format!("the body is not one GraphQL request: {error}"),
                    "BAD_REQUEST",
                ),
            );
        }
    };
    run(&endpoint, &parts, request, false).await
}

/// `GET /graphql?query=…&variables=…`, or the subscriptions' WebSocket.
pub(super) async fn get<E: Executor + Clone>(
    State(endpoint): State<Arc<Endpoint<E>>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if super::ws::is_upgrade(&parts.headers) {
        let upgrade = super::ws::Upgrade {
            executor: endpoint.executor.clone(),
            prepare: Arc::clone(&endpoint.prepare),
            // A message carries one query and its variables.
            max_message_bytes: endpoint.max_query_bytes.saturating_mul(4).max(64 * 1024),
            stop: endpoint.stop.clone(),
        };
        return super::ws::upgrade(upgrade, parts).await;
    }
    let request = match async_graphql::http::parse_query_string(parts.uri.query().unwrap_or("")) {
        Ok(request) => request,
        Err(error) => {
            return refusal(
                &parts.headers,
                StatusCode::BAD_REQUEST,
                request_error(
                    format!("the query string is not a GraphQL request: {error}"),
                    "BAD_REQUEST",
                ),
            );
        }
    };
    run(&endpoint, &parts, request, true).await
}

/// Runs one request and counts it.
async fn run<E: Executor>(
    endpoint: &Endpoint<E>,
    parts: &Parts,
    request: Request,
    over_get: bool,
) -> Response {
    let (operation, outcome, response) = execute(endpoint, parts, request, over_get).await;
    endpoint.metrics.count(operation, outcome);
    response
}

fn operation_label(operation: Option<OperationType>) -> &'static str {
    match operation {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    }
}

/// The operation's type and outcome (see [`super::metrics`]), and the answer.
async fn execute<E: Executor>(
    endpoint: &Endpoint<E>,
    parts: &Parts,
    mut request: Request,
    over_get: bool,
) -> (&'static str, &'static str, Response) {
    if let Some(persisted) = &endpoint.persisted
        && let Err(error) = persisted.resolve(&mut request).await
    {
        return (
            "unknown",
            "refused",
            refusal(&parts.headers, StatusCode::OK, error),
        );
    }
    if let Err(error) = endpoint.limits.check_size(&request.query) {
        return (
            "unknown",
            "refused",
            refusal(&parts.headers, StatusCode::BAD_REQUEST, error),
        );
    }
    let name = request.operation_name.clone();
    let operation = match request.parsed_query() {
        Ok(document) => operation_type(document, name.as_deref()),
        Err(mut error) => {
            let code = parse_failure_code(&error);
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", code);
            return (
                "unknown",
                "refused",
                refusal(&parts.headers, StatusCode::BAD_REQUEST, error),
            );
        }
    };
    let label = operation_label(operation);
    let access = match operation {
        Some(OperationType::Mutation) => Access::Write,
        Some(OperationType::Subscription) => {
            let response = refusal(
                &parts.headers,
                StatusCode::BAD_REQUEST,
                request_error(
                    "subscriptions run over a WebSocket on /graphql \
                     (graphql-transport-ws or graphql-ws)",
                    "BAD_REQUEST",
                ),
            );
            return (label, "refused", response);
        }
        // An unknown operation name is the executor's to report.
        Some(OperationType::Query) | None => Access::Read,
    };
    if over_get && access == Access::Write {
        let mut response = refusal(
            &parts.headers,
            StatusCode::METHOD_NOT_ALLOWED,
            request_error("mutations must be sent with POST", "BAD_REQUEST"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return (label, "refused", response);
    }
    if let Err(failure) = endpoint
        .prepare
        .prepare(parts, access, &mut request.data)
        .await
    {
        return (label, "refused", refused_by(&parts.headers, failure));
    }
    let response = endpoint.executor.execute(request).await;
    let outcome = if response.errors.is_empty() {
        "ok"
    } else {
        "error"
    };
    (label, outcome, render(&parts.headers, response))
}

/// The operation `name` selects (the only one when `name` is `None`).
fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            let media = media.trim();
            media.eq_ignore_ascii_case("application/json")
                || media.eq_ignore_ascii_case(GRAPHQL_RESPONSE_JSON)
        })
}

fn wants_graphql_response(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(GRAPHQL_RESPONSE_JSON))
}

/// A refusal by the credentials check, with the failure's status.
fn refused_by(headers: &HeaderMap, failure: Failure) -> Response {
    let status = failure.status();
    let retry_after = failure.retry_after_secs();
    let error = async_graphql::Error::from(failure).into_server_error(Default::default());
    let mut response = refusal(headers, status, error);
    if let Some(secs) = retry_after
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Whether the request was refused before any resolver ran: no data, and
/// only errors of parsing, validation or limits.
fn failed_before_running(response: &GqlResponse) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| {
            error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .is_some_and(|code| {
                    [PARSE_FAILED, VALIDATION_FAILED, TOO_COMPLEX]
                        .iter()
                        .any(|c| *code == async_graphql::Value::from(*c))
                })
        })
}

/// A response for a request that did not run.
fn refusal(headers: &HeaderMap, status: StatusCode, error: ServerError) -> Response {
    let mut response = render(headers, GqlResponse::from_errors(vec![error]));
    *response.status_mut() = status;
    response
}

fn render(headers: &HeaderMap, response: GqlResponse) -> Response {
    let graphql_response = wants_graphql_response(headers);
    let status = if graphql_response && failed_before_running(&response) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = match serde_json::to_vec(&response) {
        Ok(body) => body,
        Err(error) => return Failure::internal(error).into_response(),
    };
    let media = if graphql_response {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    };
    (status, [(header::CONTENT_TYPE, media)], body).into_response()
}
