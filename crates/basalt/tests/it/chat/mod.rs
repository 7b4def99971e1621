//! The chat module: rooms, members and messages over REST, and the
//! WebSocket protocol of `docs/chat-protocol.md` with real WebSocket
//! clients (tokio-tungstenite), on one node and across two.

mod delivery;
mod rest;
mod socket;

use std::time::Duration;

use basalt_testkit::{TestApp, TestAppBuilder};
use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

pub use crate::blog::{Writer, sign_up};

/// The binary's modules, cheap hashing, and chat limits tests do not trip
/// over unless they mean to.
pub fn chat_app() -> TestAppBuilder {
    crate::identity::identity_app()
        .env("BASALT_CHAT__RATE_LIMITS__SENDS_PER_MINUTE", "100000")
        .env("BASALT_CHAT__RATE_LIMITS__TYPING_PER_MINUTE", "100000")
}

/// `method path` as `user` with an optional JSON body: status and JSON.
pub async fn call(
    app: &TestApp,
    user: &Writer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = user.req(app, method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Creates a room owned by `owner`; its id.
pub async fn create_room(app: &TestApp, owner: &Writer, name: &str, kind: &str) -> String {
    let (status, body) = call(
        app,
        owner,
        Method::POST,
        "/api/chat/rooms",
        Some(json!({ "name": name, "kind": kind })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["room"]["id"].as_str().expect("id").to_owned()
}

/// `user` joins `room`.
pub async fn join(app: &TestApp, user: &Writer, room: &str) {
    let (status, body) = call(
        app,
        user,
        Method::POST,
        &format!("/api/chat/rooms/{room}/join"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Posts `body` to `room` over REST; the message.
pub async fn post(app: &TestApp, user: &Writer, room: &str, body: &str) -> Value {
    let (status, answer) = call(
        app,
        user,
        Method::POST,
        &format!("/api/chat/rooms/{room}/messages"),
        Some(json!({ "body": body })),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer["message"].clone()
}

/// A WebSocket client of `/api/chat/ws`.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the socket with extra `headers`, unauthenticated.
pub async fn open_with(
    app: &TestApp,
    headers: &[(&'static str, String)],
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}/api/chat/ws", app.addr)
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().expect("header"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// Opens the socket and authenticates as `user` with the `auth` frame.
pub async fn connect(app: &TestApp, user: &Writer) -> Socket {
    let mut socket = open_with(app, &[]).await.expect("upgraded");
    send(&mut socket, json!({ "type": "auth", "token": user.token })).await;
    let answer = next(&mut socket).await;
    assert_eq!(answer["type"], "authenticated", "{answer}");
    assert_eq!(answer["user"]["username"], user.username.as_str());
    socket
}

/// Sends one JSON frame.
pub async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::text(frame.to_string()))
        .await
        .expect("sent");
}

/// The next JSON frame, within 10 s.
pub async fn next(socket: &mut Socket) -> Value {
    next_within(socket, Duration::from_secs(10))
        .await
        .expect("a frame within the time")
}

/// The next JSON frame, if one comes within `wait`.
pub async fn next_within(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(wait, socket.next()).await.ok()?;
        match message.expect("open").expect("readable") {
            Message::Text(text) => return Some(serde_json::from_str(&text).expect("json")),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// The next frame of `kind`, skipping others (presence, typing, read…).
pub async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == kind {
            return frame;
        }
        assert_ne!(frame["type"], "error", "waiting for {kind}: {frame}");
    }
}

/// Subscribes to `room` (optionally resuming); the `subscribed` frame.
pub async fn subscribe(socket: &mut Socket, room: &str, since: Option<Value>) -> Value {
    let mut frame = json!({ "type": "subscribe", "id": "sub", "room": room });
    if let Some(since) = since {
        frame["since"] = since;
    }
    send(socket, frame).await;
    let answer = next_of(socket, "subscribed").await;
    assert_eq!(answer["id"], "sub", "{answer}");
    answer
}
