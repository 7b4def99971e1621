//! The socket: authentication, the Origin check, the subprotocol, and each
//! kind of frame between two real clients.

use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{
    call, chat_app, connect, create_room, join, next, next_of, next_within, open_with, post, send,
    sign_up, subscribe,
};
use crate::identity::{PASSWORD, sign_in};

/// The close code of the next close frame, within 15 s.
async fn close_code(socket: &mut super::Socket) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) | Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_socket_must_authenticate_and_a_bad_token_is_closed_with_4001() {
    let app = chat_app().spawn().await;
    let user = sign_up(&app).await;
    let room = create_room(&app, &user, "Auth", "public").await;

    let mut socket = open_with(&app, &[]).await.expect("upgraded");
    send(&mut socket, json!({ "type": "ping", "id": 1 })).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": 2, "room": room }),
    )
    .await;
    let refused = next(&mut socket).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("UNAUTHENTICATED"))
    );
    send(
        &mut socket,
        json!({ "type": "auth", "token": "not-a-token" }),
    )
    .await;
    assert_eq!(close_code(&mut socket).await, Some(4001));

    // A bearer header on the upgrade needs no auth frame.
    let mut socket = open_with(&app, &[("authorization", format!("Bearer {}", user.token))])
        .await
        .expect("upgraded");
    let subscribed = subscribe(&mut socket, &room, None).await;
    assert_eq!(subscribed["recovered"], false);
    // A bad bearer is refused before the upgrade.
    assert!(
        open_with(&app, &[("authorization", "Bearer nope".into())])
            .await
            .is_err()
    );
    // Frames that are not the protocol's get an error, not a crash.
    send(&mut socket, json!({ "type": "launch", "id": 9 })).await;
    let bad = next_of(&mut socket, "error").await;
    assert_eq!(
        (bad["code"].as_str(), bad["id"].as_i64()),
        (Some("BAD_USER_INPUT"), Some(9))
    );
    socket.send_text("{not json").await;
    assert_eq!(
        next_of(&mut socket, "error").await["code"],
        "BAD_USER_INPUT"
    );
}

trait SendText {
    async fn send_text(&mut self, text: &str);
}

impl SendText for super::Socket {
    async fn send_text(&mut self, text: &str) {
        use futures_util::SinkExt as _;
        self.send(Message::text(text)).await.expect("sent");
    }
}

#[tokio::test]
async fn a_cookie_opens_the_socket_only_from_an_allowed_origin() {
    let app = chat_app().spawn().await;
    let email = crate::identity::registered(&app).await;
    let browser = sign_in(&app, &email, PASSWORD).await;
    let refused = open_with(
        &app,
        &[
            ("cookie", browser.cookie.clone()),
            ("origin", "https://evil.example".into()),
        ],
    )
    .await;
    assert!(
        refused.is_err(),
        "cross-site WebSocket hijacking is refused"
    );
    let refused = open_with(&app, &[("cookie", browser.cookie.clone())]).await;
    assert!(
        refused.is_err(),
        "a cookie upgrade without Origin is refused"
    );
    let mut socket = open_with(
        &app,
        &[
            ("cookie", browser.cookie.clone()),
            ("origin", browser.origin.clone()),
        ],
    )
    .await
    .expect("upgraded from our own origin");
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(next_of(&mut socket, "pong").await["type"], "pong");
}

#[tokio::test]
async fn the_subprotocol_is_echoed_and_a_foreign_one_refused() {
    let app = chat_app().spawn().await;
    let refused = open_with(&app, &[("sec-websocket-protocol", "graphql-ws".into())]).await;
    assert!(refused.is_err());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/api/chat/ws",
            app.addr
        ))
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "basalt.chat.v1".parse().expect("header"),
    );
    let (_, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgraded");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "basalt.chat.v1"
    );
}

#[tokio::test]
async fn messages_and_room_events_reach_every_subscriber() {
    let app = chat_app().spawn().await;
    let (ann, bob) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &ann, "Live", "public").await;
    join(&app, &bob, &room).await;
    let mut ann_socket = connect(&app, &ann).await;
    let mut bob_socket = connect(&app, &bob).await;
    let epoch = subscribe(&mut ann_socket, &room, None).await["epoch"].clone();
    subscribe(&mut bob_socket, &room, None).await;

    send(
        &mut ann_socket,
        json!({ "type": "send", "id": 3, "room": room, "body": "Hi **bob**", "nonce": "n-1" }),
    )
    .await;
    let ack = next_of(&mut ann_socket, "ack").await;
    assert_eq!(
        (ack["id"].as_i64(), ack["offset"].as_i64()),
        (Some(3), Some(1))
    );
    let got = next_of(&mut bob_socket, "message").await;
    assert_eq!(got["room"], room.as_str());
    assert_eq!(got["offset"], 1);
    assert_eq!(got["epoch"], epoch);
    let message = &got["message"];
    assert_eq!(message["id"], ack["message_id"]);
    assert_eq!(message["author"]["username"], ann.username.as_str());
    assert_eq!(message["body"], "Hi **bob**");
    assert!(
        message["bodyHtml"]
            .as_str()
            .expect("bodyHtml")
            .contains("<strong>bob</strong>")
    );
    assert!(
        message["createdAt"]
            .as_str()
            .expect("createdAt")
            .ends_with('Z')
    );
    // Resending the nonce acks the same message and posts nothing.
    send(
        &mut ann_socket,
        json!({ "type": "send", "id": 4, "room": room, "body": "Hi **bob**", "nonce": "n-1" }),
    )
    .await;
    assert_eq!(next_of(&mut ann_socket, "ack").await["offset"], 1);

    send(&mut bob_socket, json!({ "type": "typing", "room": room })).await;
    let typing = next_of(&mut ann_socket, "typing").await;
    assert_eq!(typing["user"]["username"], bob.username.as_str());

    let id = message["id"].as_i64().expect("id");
    call(
        &app,
        &ann,
        Method::PATCH,
        &format!("/api/chat/rooms/{room}/messages/{id}"),
        Some(json!({ "body": "edited" })),
    )
    .await;
    let edited = next_of(&mut bob_socket, "edited").await;
    assert_eq!(edited["message"]["body"], "edited");
    call(
        &app,
        &bob,
        Method::POST,
        &format!("/api/chat/rooms/{room}/messages/{id}/reactions"),
        Some(json!({ "emoji": "🎉" })),
    )
    .await;
    let reaction = next_of(&mut ann_socket, "reaction").await;
    assert_eq!(
        (reaction["emoji"].as_str(), reaction["added"].as_bool()),
        (Some("🎉"), Some(true))
    );
    call(
        &app,
        &ann,
        Method::DELETE,
        &format!("/api/chat/rooms/{room}/messages/{id}"),
        None,
    )
    .await;
    let deleted = next_of(&mut bob_socket, "deleted").await;
    assert_eq!(
        (deleted["message_id"].as_i64(), deleted["offset"].as_i64()),
        (Some(id), Some(1))
    );

    // After unsubscribing, nothing more of the room arrives.
    send(
        &mut bob_socket,
        json!({ "type": "unsubscribe", "id": 5, "room": room }),
    )
    .await;
    assert_eq!(next_of(&mut bob_socket, "unsubscribed").await["id"], 5);
    post(&app, &ann, &room, "after bob left").await;
    while let Some(frame) = next_within(&mut bob_socket, Duration::from_millis(700)).await {
        assert_ne!(frame["type"], "message", "{frame}");
    }
}

#[tokio::test]
async fn read_state_and_mentions_reach_all_of_a_users_devices() {
    let app = chat_app().spawn().await;
    let (ann, bob) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &ann, "Devices", "public").await;
    join(&app, &bob, &room).await;
    let mut phone = connect(&app, &bob).await;
    let mut laptop = connect(&app, &bob).await;
    post(&app, &ann, &room, &format!("ping @{}", bob.username)).await;
    let mention = next_of(&mut phone, "mention").await;
    assert_eq!(mention["offset"], 1);
    assert_eq!(next_of(&mut laptop, "mention").await["offset"], 1);
    post(&app, &ann, &room, "two").await;

    send(
        &mut phone,
        json!({ "type": "read", "room": room, "offset": 1 }),
    )
    .await;
    for device in [&mut phone, &mut laptop] {
        let read = next_of(device, "read").await;
        assert_eq!(read["room"], room.as_str());
        assert_eq!(
            (
                read["offset"].as_i64(),
                read["unread"].as_i64(),
                read["mentions"].as_i64()
            ),
            (Some(1), Some(1), Some(0))
        );
    }
    send(
        &mut laptop,
        json!({ "type": "read", "room": room, "offset": 2 }),
    )
    .await;
    let read = next_of(&mut phone, "read").await;
    assert_eq!(
        (read["offset"].as_i64(), read["unread"].as_i64()),
        (Some(2), Some(0))
    );
}

#[tokio::test]
async fn presence_is_announced_to_the_rooms_of_a_user() {
    let app = chat_app().spawn().await;
    let (ann, bob) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &ann, "Presence", "public").await;
    join(&app, &bob, &room).await;
    let mut ann_socket = connect(&app, &ann).await;
    subscribe(&mut ann_socket, &room, None).await;
    let mut bob_socket = connect(&app, &bob).await;
    let online = next_of(&mut ann_socket, "presence").await;
    assert_eq!(
        (
            online["user"]["username"].as_str(),
            online["status"].as_str()
        ),
        (Some(bob.username.as_str()), Some("online"))
    );
    send(
        &mut bob_socket,
        json!({ "type": "presence", "status": "away" }),
    )
    .await;
    let away = next_of(&mut ann_socket, "presence").await;
    assert_eq!(away["status"], "away");
    let (_, members) = call(
        &app,
        &ann,
        Method::GET,
        &format!("/api/chat/rooms/{room}/members"),
        None,
    )
    .await;
    let bob_row = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["user"]["username"] == bob.username.as_str())
        .cloned()
        .expect("bob");
    assert_eq!(bob_row["presence"], "away");
    send(
        &mut bob_socket,
        json!({ "type": "presence", "status": "asleep", "id": 1 }),
    )
    .await;
    assert_eq!(
        next_of(&mut bob_socket, "error").await["code"],
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn a_kicked_member_loses_the_subscription_of_a_private_room() {
    let app = chat_app().spawn().await;
    let (owner, guest) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &owner, "Inner circle", "private").await;
    call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/chat/rooms/{room}/members"),
        Some(json!({ "username": guest.username })),
    )
    .await;
    let mut socket = connect(&app, &guest).await;
    subscribe(&mut socket, &room, None).await;
    let (status, _) = call(
        &app,
        &owner,
        Method::DELETE,
        &format!("/api/chat/rooms/{room}/members/{}", guest.username),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(next_of(&mut socket, "removed").await["room"], room.as_str());
    post(&app, &owner, &room, "secret plans").await;
    while let Some(frame) = next_within(&mut socket, Duration::from_millis(700)).await {
        assert_ne!(frame["type"], "message", "{frame}");
    }
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": 1, "room": room }),
    )
    .await;
    assert_eq!(next_of(&mut socket, "error").await["code"], "NOT_FOUND");
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1012() {
    let mut app = chat_app().spawn().await;
    let user = sign_up(&app).await;
    let mut socket = connect(&app, &user).await;
    app.begin_shutdown();
    assert_eq!(close_code(&mut socket).await, Some(1012));
}
