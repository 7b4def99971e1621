//! `GET /api/chat/ws`: the chat's WebSocket (protocol in
//! `docs/chat-protocol.md`).
//!
//! Credentials are checked at the upgrade when the request carries them: a
//! bearer token, or the session cookie, which needs an allowed `Origin`
//! (cross-site WebSocket hijacking: a page on another site can open a socket
//! with the user's cookie, and this check is the whole defence). Otherwise
//! the first frame must be `{"type":"auth","token":…}`. Never a token in
//! the URL.

mod connection;

use axum::Router;
use axum::extract::{FromRequestParts as _, State, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use basalt_identity::auth::{Intent, authenticate};
use basalt_platform::error::Failure;
use uuid::Uuid;

use crate::hub::Hub;
use crate::metrics::ChatMetrics;
use crate::service::Chat;

/// The protocol's name, offered in `Sec-WebSocket-Protocol`.
pub const SUBPROTOCOL: &str = "basalt.chat.v1";
/// The largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The socket's initial read buffer and its write batching.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024;

/// What the socket route needs.
#[derive(Clone, Debug)]
pub struct Sockets {
    /// The service.
    pub chat: Chat,
    /// This node's hub.
    pub hub: Hub,
    /// Metrics.
    pub metrics: ChatMetrics,
}

/// The raw (undocumented in OpenAPI) route of the socket.
pub fn router(sockets: Sockets) -> Router {
    Router::new()
        .route("/api/chat/ws", get(upgrade))
        .with_state(sockets)
}

/// Whether a client that names protocols names ours.
fn offers_ours(headers: &HeaderMap) -> bool {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    offered.is_empty() || offered.contains(&SUBPROTOCOL)
}

/// The user an upgrade request's own credentials name, if it has any.
pub(crate) async fn user_of(chat: &Chat, parts: &Parts) -> Result<Option<Uuid>, Failure> {
    Ok(authenticate(&chat.identity, parts, Intent::Subscribe)
        .await?
        .map(|who| who.user_id))
}

async fn upgrade(State(sockets): State<Sockets>, mut parts: Parts) -> Response {
    if !offers_ours(&parts.headers) {
        return Failure::bad_request(format!(
            "this endpoint speaks {SUBPROTOCOL}; offer it in Sec-WebSocket-Protocol, or no protocol"
        ))
        .into_response();
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let user = match user_of(&sockets.chat, &parts).await {
        Ok(user) => user,
        Err(failure) => return failure.into_response(),
    };
    upgrade
        .protocols([SUBPROTOCOL])
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        // tungstenite allocates its 128 KiB read buffer up front: 1.3 GB
        // for 10,000 idle sockets. It grows when a bigger frame comes.
        .read_buffer_size(SOCKET_BUFFER_BYTES)
        .write_buffer_size(SOCKET_BUFFER_BYTES)
        .on_upgrade(move |socket| connection::serve(sockets, socket, user))
}
