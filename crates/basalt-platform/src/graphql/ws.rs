//! Subscriptions: a WebSocket upgrade on `/graphql`, speaking
//! `graphql-transport-ws` or the legacy `graphql-ws` (Apollo's
//! subscriptions-transport-ws), whichever the client names first in
//! `Sec-WebSocket-Protocol`.
//!
//! Credentials are checked at the upgrade, with [`Access::Subscribe`]: a
//! bearer token in `Authorization`, or the session cookie, which needs an
//! allowed `Origin` (a page on another site can open a WebSocket with the
//! user's cookie, and browsers let it: this check is the whole defence). A
//! client that cannot set headers (browsers) may send the token in the
//! `connection_init` payload instead (`{"Authorization": "Bearer …"}`),
//! checked the same way. Messages are bounded by the query size limit. The
//! connection ends when the node shuts down (the supervisor's signal): the
//! client reconnects, to another node behind a balancer.

use std::sync::Arc;

use async_graphql::{Data, Executor};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{FromRequestParts as _, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use tokio_util::sync::CancellationToken;

use super::{Access, Prepare};
use crate::error::Failure;

/// Whether `headers` ask for a WebSocket.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// What an upgrade needs besides the request.
pub(super) struct Upgrade<E> {
    pub(super) executor: E,
    pub(super) prepare: Arc<dyn Prepare>,
    pub(super) max_message_bytes: usize,
    pub(super) stop: CancellationToken,
}

/// Checks the upgrade request's credentials and protocol, then serves the
/// subscriptions of the connection.
pub(super) async fn upgrade<E: Executor + Clone>(
    upgrade: Upgrade<E>,
    mut parts: Parts,
) -> Response {
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(protocol) => protocol,
        Err(_) => {
            return Failure::bad_request(
                "name graphql-transport-ws or graphql-ws in Sec-WebSocket-Protocol",
            )
            .into_response();
        }
    };
    let socket = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(socket) => socket,
        Err(rejection) => return rejection.into_response(),
    };
    let mut data = Data::default();
    if let Err(failure) = upgrade
        .prepare
        .prepare(&parts, Access::Subscribe, &mut data)
        .await
    {
        return failure.into_response();
    }
    let Upgrade {
        executor,
        prepare,
        max_message_bytes,
        stop,
    } = upgrade;
    let has_header_credential = parts.headers.contains_key(header::AUTHORIZATION);
    socket
        .protocols(["graphql-transport-ws", "graphql-ws"])
        .max_message_size(max_message_bytes)
        .max_frame_size(max_message_bytes)
        .on_upgrade(move |socket| async move {
            let connection = GraphQLWebSocket::new(socket, executor, protocol)
                .with_data(data)
                .on_connection_init(move |payload| async move {
                    connection_init(&*prepare, parts, has_header_credential, payload).await
                });
            tokio::select! {
                () = connection.serve() => {}
                () = stop.cancelled() => {}
            }
        })
}

/// The data of a `connection_init` that carries a token (when the upgrade
/// did not): checked like an `Authorization` header on the upgrade.
async fn connection_init(
    prepare: &dyn Prepare,
    mut parts: Parts,
    has_header_credential: bool,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let token = ["Authorization", "authorization"]
        .iter()
        .find_map(|key| payload.get(*key).and_then(|v| v.as_str()));
    let mut data = Data::default();
    let (Some(token), false) = (token, has_header_credential) else {
        return Ok(data);
    };
    let value = HeaderValue::from_str(token).map_err(|_| {
        async_graphql::Error::from(Failure::new(crate::error::ErrorKind::Unauthenticated))
    })?;
    parts.headers.insert(header::AUTHORIZATION, value);
    // A token replaces the cookie: it is the client's stated credential.
    parts.headers.remove(header::COOKIE);
    prepare
        .prepare(&parts, Access::Subscribe, &mut data)
        .await
        .map_err(async_graphql::Error::from)?;
    Ok(data)
}
