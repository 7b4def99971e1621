//! The chat over GraphQL: the same answers as REST for rooms, members,
//! history and unread counts; the mutations and their error codes; and
//! `messageAdded`, which delivers what REST sends in offset order, once.

use std::collections::HashSet;
use std::time::Duration;

use basalt_testkit::TestApp;
use futures_util::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::subscriptions::{Socket, next, open, send};
use super::{code, data, post};
use crate::chat::{Writer, call, chat_app, create_room, join, sign_up};

/// A GraphQL operation as `user`: the whole answer.
async fn as_user(app: &TestApp, user: &Writer, query: &str, variables: Value) -> Value {
    post(app, Some(&user.token), query, variables).await.1
}

/// The `data` of an operation as `user` that must succeed.
async fn data_of(app: &TestApp, user: &Writer, query: &str, variables: Value) -> Value {
    data(app, Some(&user.token), query, variables).await
}

/// The code of the first error of an operation as `user` that must fail.
async fn error_of(app: &TestApp, user: &Writer, query: &str, variables: Value) -> String {
    let body = as_user(app, user, query, variables).await;
    code(&body).to_owned()
}

/// A REST room as the GraphQL one reads: camelCase, kinds and roles
/// upper-cased, times to the second (REST writes more digits).
fn rest_room(r: &Value) -> Value {
    let upper = |v: &Value| v.as_str().map(str::to_uppercase);
    json!({
        "id": r["id"], "name": r["name"], "kind": upper(&r["kind"]), "epoch": r["epoch"],
        "lastOffset": r["last_offset"], "createdAt": r["created_at"].as_str().map(|t| &t[..19]),
        "membership": if r["membership"].is_null() { Value::Null } else { json!({
            "role": upper(&r["membership"]["role"]), "state": upper(&r["membership"]["state"]),
            "muted": r["membership"]["muted"], "readOffset": r["membership"]["read_offset"] }) },
    })
}

fn gql_room(r: &Value) -> Value {
    let mut r = r.clone();
    r["createdAt"] = json!(r["createdAt"].as_str().map(|t| &t[..19]));
    r
}

const ROOM_FIELDS: &str =
    "id name kind epoch lastOffset createdAt membership { role state muted readOffset }";
const MESSAGE_FIELDS: &str = "id room offset author { id username image } body bodyHtml replyTo deleted reactions { emoji count } mentions editedAt";

fn rest_message(m: &Value) -> Value {
    json!({
        "id": m["id"].to_string(), "room": m["room"], "offset": m["offset"],
        "author": m["author"], "body": m["body"], "bodyHtml": m["body_html"],
        "replyTo": m["reply_to"].as_i64().map(|id| id.to_string()), "deleted": m["deleted"],
        "reactions": m["reactions"], "mentions": m["mentions"],
        "editedAt": m["edited_at"].as_str().map(|t| &t[..19]),
    })
}

fn gql_message(m: &Value) -> Value {
    let mut m = m.clone();
    m["editedAt"] = json!(m["editedAt"].as_str().map(|t| &t[..19]));
    m
}

/// Posts `body` over REST as `user`; the message.
async fn rest_post(app: &TestApp, user: &Writer, room: &str, body: Value) -> Value {
    let (status, answer) = call(
        app,
        user,
        Method::POST,
        &format!("/api/chat/rooms/{room}/messages"),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer["message"].clone()
}

#[tokio::test]
async fn chat_queries_answer_as_rest_does() {
    let app = chat_app().spawn().await;
    let (owner, reader) = (sign_up(&app).await, sign_up(&app).await);
    let created = data_of(
        &app,
        &owner,
        &format!(
            "mutation($n: String!) {{ createChatRoom(name: $n, kind: PUBLIC) {{ {ROOM_FIELDS} }} }}"
        ),
        json!({ "n": "Lobby" }),
    )
    .await;
    let room = created["createChatRoom"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(created["createChatRoom"]["membership"]["role"], "OWNER");
    let private = create_room(&app, &owner, "Back office", "private").await;
    join(&app, &reader, &room).await;
    let first = rest_post(&app, &owner, &room, json!({ "body": "*hello*" })).await;
    rest_post(
        &app,
        &reader,
        &room,
        json!({ "body": format!("hi @{}", owner.username), "reply_to": first["id"] }),
    )
    .await;
    rest_post(&app, &owner, &room, json!({ "body": "third" })).await;
    let (status, _) = call(
        &app,
        &owner,
        Method::PUT,
        &format!("/api/chat/rooms/{room}/read"),
        Some(json!({ "offset": 1 })),
    )
    .await;
    assert_eq!(status, 200);

    // Rooms: the same list, in the same order, for both users.
    for user in [&owner, &reader] {
        let (_, rest) = call(&app, user, Method::GET, "/api/chat/rooms", None).await;
        let gql = data_of(
            &app,
            user,
            &format!("{{ chatRooms {{ {ROOM_FIELDS} }} }}"),
            json!({}),
        )
        .await;
        let rest: Vec<Value> = rest["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(rest_room)
            .collect();
        let gql: Vec<Value> = gql["chatRooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(gql_room)
            .collect();
        assert_eq!(gql, rest);
        assert_eq!(
            gql.iter().any(|r| r["id"] == private.as_str()),
            std::ptr::eq(user, &owner),
            "a private room is listed to its members only"
        );
    }
    let one = format!("query($id: ID!) {{ chatRoom(id: $id) {{ {ROOM_FIELDS} }} }}");
    let (_, rest) = call(
        &app,
        &reader,
        Method::GET,
        &format!("/api/chat/rooms/{room}"),
        None,
    )
    .await;
    let gql = data_of(&app, &reader, &one, json!({ "id": room })).await;
    assert_eq!(gql_room(&gql["chatRoom"]), rest_room(&rest["room"]));
    let hidden = data_of(&app, &reader, &one, json!({ "id": private })).await;
    assert_eq!(
        hidden["chatRoom"],
        Value::Null,
        "a room the caller may not know of is null"
    );
    assert_eq!(
        error_of(&app, &reader, &one, json!({ "id": "not-a-room" })).await,
        "BAD_USER_INPUT"
    );

    // History pages: newest page, forward from an offset, back from one.
    let page = format!(
        "query($r: ID!, $a: Int, $b: Int, $l: Int) {{ chatMessages(room: $r, after: $a, before: $b, limit: $l) {{ messages {{ {MESSAGE_FIELDS} }} epoch lastOffset hasMore }} }}"
    );
    for (query, vars) in [
        ("limit=2", json!({ "r": room, "l": 2 })),
        ("after=1", json!({ "r": room, "a": 1 })),
        ("before=3&limit=1", json!({ "r": room, "b": 3, "l": 1 })),
        ("", json!({ "r": room })),
    ] {
        let (status, rest) = call(
            &app,
            &reader,
            Method::GET,
            &format!("/api/chat/rooms/{room}/messages?{query}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{rest}");
        let gql = data_of(&app, &reader, &page, vars).await["chatMessages"].clone();
        let rest_messages: Vec<Value> = rest["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(rest_message)
            .collect();
        let gql_messages: Vec<Value> = gql["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(gql_message)
            .collect();
        assert!(!gql_messages.is_empty(), "{query}");
        assert_eq!(gql_messages, rest_messages, "{query}");
        assert_eq!(gql["epoch"], rest["epoch"]);
        assert_eq!(gql["lastOffset"], rest["last_offset"]);
        assert_eq!(gql["hasMore"], rest["has_more"], "{query}");
    }
    let all = data_of(&app, &reader, &page, json!({ "r": room })).await;
    let reply = &all["chatMessages"]["messages"][1];
    assert_eq!(reply["replyTo"], first["id"].to_string());
    assert_eq!(reply["mentions"], json!([owner.username]));
    assert_eq!(
        error_of(&app, &reader, &page, json!({ "r": room, "l": 500 })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        error_of(&app, &reader, &page, json!({ "r": private })).await,
        "NOT_FOUND"
    );

    // Members and unread counts.
    let members = "query($r: ID!) { chatMembers(room: $r) { user { username } role state muted readOffset presence } }";
    let (_, rest) = call(
        &app,
        &reader,
        Method::GET,
        &format!("/api/chat/rooms/{room}/members"),
        None,
    )
    .await;
    let gql = data_of(&app, &reader, members, json!({ "r": room })).await;
    let rest: Vec<Value> = rest["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| json!({ "user": { "username": m["user"]["username"] }, "role": m["role"].as_str().map(str::to_uppercase),
            "state": m["state"].as_str().map(str::to_uppercase), "muted": m["muted"], "readOffset": m["read_offset"], "presence": m["presence"] }))
        .collect();
    assert_eq!(gql["chatMembers"], json!(rest));
    assert_eq!(gql["chatMembers"][0]["role"], "OWNER");

    for user in [&owner, &reader] {
        let (_, rest) = call(&app, user, Method::GET, "/api/chat/unread", None).await;
        let gql = data_of(
            &app,
            user,
            "{ chatUnread { room unread mentions readOffset lastOffset } }",
            json!({}),
        )
        .await;
        let rest: Vec<Value> = rest["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(|u| {
                json!({ "room": u["room"], "unread": u["unread"], "mentions": u["mentions"],
                "readOffset": u["read_offset"], "lastOffset": u["last_offset"] })
            })
            .collect();
        assert_eq!(gql["chatUnread"], json!(rest));
    }
    let mine = data_of(&app, &reader, "{ chatUnread { room mentions } }", json!({})).await;
    assert_eq!(mine["chatUnread"], json!([{ "room": room, "mentions": 0 }]));

    // Without credentials, nothing.
    let (_, body) = post(&app, None, "{ chatRooms { id } }", json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
}

const SEND: &str = "mutation($r: ID!, $b: String!, $t: ID, $n: String) { sendChatMessage(room: $r, body: $b, replyTo: $t, nonce: $n) { id offset body author { username } replyTo } }";

#[tokio::test]
async fn chat_mutations_call_the_service_and_code_their_errors() {
    let app = chat_app().spawn().await;
    let (owner, member, outsider) = (
        sign_up(&app).await,
        sign_up(&app).await,
        sign_up(&app).await,
    );
    let create = "mutation($n: String!, $k: ChatRoomKind!) { createChatRoom(name: $n, kind: $k) { id kind } }";
    assert_eq!(
        error_of(&app, &owner, create, json!({ "n": "   ", "k": "PUBLIC" })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        error_of(&app, &owner, create, json!({ "n": "Chat", "k": "DIRECT" })).await,
        "BAD_USER_INPUT"
    );
    let room = data_of(&app, &owner, create, json!({ "n": "Open", "k": "PUBLIC" })).await
        ["createChatRoom"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let private = data_of(
        &app,
        &owner,
        create,
        json!({ "n": "Closed", "k": "PRIVATE" }),
    )
    .await["createChatRoom"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Sending: not joined is forbidden, a hidden room not found.
    let hello = json!({ "r": room, "b": "hello" });
    assert_eq!(
        error_of(&app, &member, SEND, hello.clone()).await,
        "FORBIDDEN"
    );
    assert_eq!(
        error_of(&app, &outsider, SEND, json!({ "r": private, "b": "psst" })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        error_of(
            &app,
            &outsider,
            "mutation($r: ID!) { joinChatRoom(room: $r) { id } }",
            json!({ "r": private })
        )
        .await,
        "NOT_FOUND"
    );
    let joined = data_of(
        &app,
        &member,
        "mutation($r: ID!) { joinChatRoom(room: $r) { membership { role state } } }",
        json!({ "r": room }),
    )
    .await;
    assert_eq!(
        joined["joinChatRoom"]["membership"],
        json!({ "role": "MEMBER", "state": "JOINED" })
    );
    let sent = data_of(&app, &member, SEND, hello).await["sendChatMessage"].clone();
    assert_eq!(sent["offset"], 1);
    assert_eq!(sent["author"]["username"], member.username.as_str());
    let id = sent["id"].as_str().expect("id").to_owned();
    let (_, rest) = call(
        &app,
        &owner,
        Method::GET,
        &format!("/api/chat/rooms/{room}/messages"),
        None,
    )
    .await;
    assert_eq!(
        rest["messages"][0]["id"].to_string(),
        id,
        "REST sees what GraphQL sent"
    );
    assert_eq!(
        error_of(&app, &member, SEND, json!({ "r": room, "b": "  " })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        error_of(
            &app,
            &member,
            SEND,
            json!({ "r": room, "b": "x", "t": "abc" })
        )
        .await,
        "BAD_USER_INPUT"
    );
    // Idempotent with a nonce; threads by id.
    let once = json!({ "r": room, "b": "once", "n": "n-1", "t": id });
    let a = data_of(&app, &owner, SEND, once.clone()).await["sendChatMessage"].clone();
    let b = data_of(&app, &owner, SEND, once).await["sendChatMessage"].clone();
    assert_eq!(a, b);
    assert_eq!(a["offset"], 2);
    assert_eq!(a["replyTo"], id.as_str());

    // Editing, reacting, deleting.
    let edit = "mutation($r: ID!, $m: ID!, $b: String!) { editChatMessage(room: $r, message: $m, body: $b) { body editedAt } }";
    let mine = json!({ "r": room, "m": id, "b": "hello, edited" });
    assert_eq!(
        error_of(&app, &owner, edit, mine.clone()).await,
        "FORBIDDEN"
    );
    let edited = data_of(&app, &member, edit, mine).await["editChatMessage"].clone();
    assert_eq!(edited["body"], "hello, edited");
    assert!(edited["editedAt"].is_string(), "{edited}");
    assert_eq!(
        error_of(
            &app,
            &member,
            edit,
            json!({ "r": room, "m": "999999", "b": "x" })
        )
        .await,
        "NOT_FOUND"
    );
    let react = "mutation($r: ID!, $m: ID!, $e: String!) { reactToChatMessage(room: $r, message: $m, emoji: $e) { reactions { emoji count } } }";
    let unreact = "mutation($r: ID!, $m: ID!, $e: String!) { removeChatReaction(room: $r, message: $m, emoji: $e) { reactions { emoji count } } }";
    let thumbs = json!({ "r": room, "m": id, "e": "👍" });
    for user in [&owner, &member] {
        data_of(&app, user, react, thumbs.clone()).await;
    }
    let (_, rest) = call(
        &app,
        &owner,
        Method::GET,
        &format!("/api/chat/rooms/{room}/messages"),
        None,
    )
    .await;
    assert_eq!(
        rest["messages"][0]["reactions"],
        json!([{ "emoji": "👍", "count": 2 }])
    );
    let left = data_of(&app, &owner, unreact, thumbs).await;
    assert_eq!(
        left["removeChatReaction"]["reactions"],
        json!([{ "emoji": "👍", "count": 1 }])
    );
    assert_eq!(
        error_of(
            &app,
            &owner,
            react,
            json!({ "r": room, "m": id, "e": "not an emoji" })
        )
        .await,
        "BAD_USER_INPUT"
    );
    let delete = "mutation($r: ID!, $m: ID!) { deleteChatMessage(room: $r, message: $m) }";
    assert_eq!(
        error_of(&app, &outsider, delete, json!({ "r": room, "m": id })).await,
        "FORBIDDEN"
    );
    let deleted = data_of(&app, &owner, delete, json!({ "r": room, "m": id })).await;
    assert_eq!(
        deleted["deleteChatMessage"], true,
        "a moderator deletes any message"
    );
    let (_, rest) = call(
        &app,
        &owner,
        Method::GET,
        &format!("/api/chat/rooms/{room}/messages"),
        None,
    )
    .await;
    assert_eq!(rest["messages"][0]["deleted"], true);

    // Read state.
    let read = "mutation($r: ID!, $o: Int!) { markChatRead(room: $r, offset: $o) { room unread readOffset lastOffset } }";
    let unread = data_of(&app, &member, read, json!({ "r": room, "o": 99 })).await;
    assert_eq!(
        unread["markChatRead"],
        json!({ "room": room, "unread": 0, "readOffset": 2, "lastOffset": 2 })
    );
    assert_eq!(
        error_of(&app, &member, read, json!({ "r": room, "o": -1 })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        error_of(&app, &outsider, read, json!({ "r": room, "o": 1 })).await,
        "FORBIDDEN"
    );

    // Moderation.
    let add = "mutation($r: ID!, $u: String!) { addChatMember(room: $r, username: $u) { user { username } role state } }";
    let update = "mutation($r: ID!, $u: String!, $role: ChatMemberRole, $m: Boolean) { updateChatMember(room: $r, username: $u, role: $role, muted: $m) { role muted } }";
    let kick = "mutation($r: ID!, $u: String!) { kickChatMember(room: $r, username: $u) }";
    let ban = "mutation($r: ID!, $u: String!) { banChatMember(room: $r, username: $u) { state } }";
    let someone = json!({ "r": private, "u": outsider.username });
    assert_eq!(
        error_of(&app, &member, add, someone.clone()).await,
        "NOT_FOUND"
    );
    let added = data_of(&app, &owner, add, someone.clone()).await;
    assert_eq!(
        added["addChatMember"],
        json!({ "user": { "username": outsider.username }, "role": "MEMBER", "state": "JOINED" })
    );
    assert_eq!(
        error_of(
            &app,
            &owner,
            add,
            json!({ "r": private, "u": "nobody-at-all" })
        )
        .await,
        "NOT_FOUND"
    );
    let muted = data_of(
        &app,
        &owner,
        update,
        json!({ "r": private, "u": outsider.username, "m": true }),
    )
    .await;
    assert_eq!(
        muted["updateChatMember"],
        json!({ "role": "MEMBER", "muted": true })
    );
    assert_eq!(
        error_of(
            &app,
            &outsider,
            SEND,
            json!({ "r": private, "b": "let me speak" })
        )
        .await,
        "FORBIDDEN"
    );
    assert_eq!(
        error_of(
            &app,
            &owner,
            update,
            json!({ "r": private, "u": outsider.username, "role": "OWNER" })
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        error_of(
            &app,
            &outsider,
            kick,
            json!({ "r": private, "u": owner.username })
        )
        .await,
        "FORBIDDEN"
    );
    let kicked = data_of(&app, &owner, kick, someone.clone()).await;
    assert_eq!(kicked["kickChatMember"], true);
    let hidden = data_of(
        &app,
        &outsider,
        "query($id: ID!) { chatRoom(id: $id) { id } }",
        json!({ "id": private }),
    )
    .await;
    assert_eq!(
        hidden["chatRoom"],
        Value::Null,
        "kicked from a private room, it is gone"
    );
    let banned = data_of(
        &app,
        &owner,
        ban,
        json!({ "r": room, "u": member.username }),
    )
    .await;
    assert_eq!(banned["banChatMember"]["state"], "BANNED");
    assert_eq!(
        error_of(
            &app,
            &member,
            "query($r: ID!) { chatMessages(room: $r) { lastOffset } }",
            json!({ "r": room })
        )
        .await,
        "FORBIDDEN"
    );
    let leave = "mutation($r: ID!) { leaveChatRoom(room: $r) }";
    assert_eq!(
        error_of(&app, &outsider, leave, json!({ "r": room })).await,
        "FORBIDDEN"
    );

    // Direct rooms.
    let direct =
        "mutation($u: String!) { directChatRoom(username: $u) { id kind membership { state } } }";
    let dm =
        data_of(&app, &owner, direct, json!({ "u": outsider.username })).await["directChatRoom"]
            .clone();
    assert_eq!(dm["kind"], "DIRECT");
    let again = data_of(&app, &outsider, direct, json!({ "u": owner.username })).await;
    assert_eq!(
        again["directChatRoom"]["id"], dm["id"],
        "one direct room per pair"
    );
    assert_eq!(
        error_of(&app, &owner, direct, json!({ "u": owner.username })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        error_of(&app, &owner, direct, json!({ "u": "nobody-at-all" })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        error_of(&app, &owner, leave, json!({ "r": dm["id"] })).await,
        "FORBIDDEN"
    );
}

const ADDED: &str = "subscription($r: ID!, $a: Int) { messageAdded(room: $r, after: $a) { id offset body author { username } } }";

/// A graphql-transport-ws socket, signed in as `user`.
async fn subscriber(app: &TestApp, user: &Writer) -> Socket {
    let mut socket = open(app, "graphql-transport-ws", &[])
        .await
        .expect("upgraded");
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", user.token) } }),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "connection_ack");
    socket
}

/// Subscribes `id` to `messageAdded`.
async fn subscribe(socket: &mut Socket, id: &str, room: &str, after: Option<i64>) {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": ADDED, "variables": { "r": room, "a": after } } }),
    )
    .await;
}

/// The offsets of the next `count` messages of subscription `id`, each
/// with the body [`send_range`] gave it.
async fn offsets(socket: &mut Socket, id: &str, count: usize) -> Vec<i64> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let message = next(socket).await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        let added = &message["payload"]["data"]["messageAdded"];
        let offset = added["offset"].as_i64().expect("offset");
        assert_eq!(added["body"], format!("message {offset}"), "{added}");
        got.push(offset);
    }
    got
}

/// Nothing more for `wait`, but keep-alives.
async fn quiet(socket: &mut Socket, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, socket.next()).await {
        if let Ok(Message::Text(text)) = message {
            let value: Value = serde_json::from_str(&text).expect("json");
            assert!(
                value["type"] == "ka" || value["type"] == "ping",
                "more: {value}"
            );
        }
    }
}

/// Posts messages `from..=to` over REST as `user`, bodies `message <offset>`.
async fn send_range(app: &TestApp, user: &Writer, room: &str, from: i64, to: i64) {
    for offset in from..=to {
        let sent = rest_post(
            app,
            user,
            room,
            json!({ "body": format!("message {offset}") }),
        )
        .await;
        assert_eq!(sent["offset"], offset);
    }
}

#[tokio::test]
async fn message_added_delivers_rest_sends_in_order_and_once() {
    let app = chat_app().spawn().await;
    let (owner, reader) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &owner, "Live", "public").await;
    send_range(&app, &owner, &room, 1, 3).await;

    let mut socket = subscriber(&app, &reader).await;
    // Resuming after 1: 2 and 3 from the database, then the live ones.
    subscribe(&mut socket, "resumed", &room, Some(1)).await;
    assert_eq!(offsets(&mut socket, "resumed", 2).await, vec![2, 3]);
    // From now on only: the newest message is not sent again.
    subscribe(&mut socket, "new", &room, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    send_range(&app, &owner, &room, 4, 8).await;
    let mut resumed = Vec::new();
    let mut new = Vec::new();
    while resumed.len() + new.len() < 10 {
        let message = next(&mut socket).await;
        assert_eq!(message["type"], "next", "{message}");
        let added = &message["payload"]["data"]["messageAdded"];
        assert_eq!(added["author"]["username"], owner.username.as_str());
        let offset = added["offset"].as_i64().expect("offset");
        match message["id"].as_str() {
            Some("resumed") => resumed.push(offset),
            Some("new") => new.push(offset),
            other => panic!("unknown subscription {other:?}"),
        }
    }
    assert_eq!(resumed, vec![4, 5, 6, 7, 8]);
    assert_eq!(new, vec![4, 5, 6, 7, 8]);
    quiet(&mut socket, Duration::from_millis(1500)).await;

    // What the caller may not read, or an offset the room does not have.
    subscribe(&mut socket, "past", &room, Some(99)).await;
    assert_eq!(refusal(&mut socket, "past").await, "BAD_USER_INPUT");
    let private = create_room(&app, &owner, "Hidden", "private").await;
    subscribe(&mut socket, "hidden", &private, None).await;
    assert_eq!(refusal(&mut socket, "hidden").await, "NOT_FOUND");
}

/// The error code that refused subscription `id` (whichever way the
/// protocol writes it), and its `complete`.
async fn refusal(socket: &mut Socket, id: &str) -> String {
    let got = next(socket).await;
    assert_eq!(got["id"], id, "{got}");
    let errors = if got["type"] == "error" {
        got["payload"].clone()
    } else {
        got["payload"]["errors"].clone()
    };
    let code = errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {got}"))
        .to_owned();
    if got["type"] == "next" {
        assert_eq!(next(socket).await, json!({ "id": id, "type": "complete" }));
    }
    code
}

/// Posts `count` messages to `room` over REST, one after the other.
async fn sender(app: &TestApp, user: &Writer, room: &str, count: i64) {
    for _ in 0..count {
        rest_post(app, user, room, json!({ "body": "burst" })).await;
    }
}

/// Four clients post `count` messages over REST on `sender_app`, at once,
/// while a subscription on `reader_app` reads them: every offset once, in
/// order, nothing more.
async fn burst(sender_app: &TestApp, reader_app: &TestApp, count: i64) {
    let owner = sign_up(sender_app).await;
    let reader = sign_up(sender_app).await;
    let room = create_room(sender_app, &owner, "Busy", "public").await;
    join(sender_app, &reader, &room).await;
    let mut socket = subscriber(reader_app, &reader).await;
    subscribe(&mut socket, "busy", &room, Some(0)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let read = async {
        let mut seen = Vec::new();
        while (seen.len() as i64) < count {
            let message = next(&mut socket).await;
            assert_eq!(message["type"], "next", "{message}");
            let added = &message["payload"]["data"]["messageAdded"];
            seen.push(added["offset"].as_i64().expect("offset"));
        }
        seen
    };
    let quarter = count / 4;
    let ((), (), (), (), seen) = tokio::join!(
        sender(sender_app, &owner, &room, quarter),
        sender(sender_app, &owner, &room, quarter),
        sender(sender_app, &owner, &room, quarter),
        sender(sender_app, &owner, &room, count - 3 * quarter),
        read,
    );
    let expected: Vec<i64> = (1..=count).collect();
    assert_eq!(seen, expected, "every offset once, in order");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    quiet(&mut socket, Duration::from_millis(1000)).await;
}

#[tokio::test]
async fn message_added_keeps_order_through_concurrent_senders() {
    let app = chat_app().spawn().await;
    burst(&app, &app, 200).await;
}

#[tokio::test]
async fn message_added_reaches_a_subscriber_on_another_node() {
    let first = chat_app().spawn().await;
    if first.platform.config.redis_url.is_none() {
        // Nodes share messages through Redis; the embedded pass runs one node.
        return;
    }
    let second = chat_app().node_of(&first).spawn().await;
    burst(&first, &second, 200).await;
}

#[tokio::test]
async fn message_added_fills_what_the_broadcast_lost_from_the_database() {
    let first = chat_app().spawn().await;
    // Without Redis, each node's broadcast is its own: what the second node
    // sends is never published to the first, as if every publish were lost
    // (with Redis this checks delivery across nodes).
    let second = chat_app().node_of(&first).spawn().await;
    let owner = sign_up(&first).await;
    let room = create_room(&first, &owner, "Lossy", "public").await;
    let mut socket = subscriber(&first, &owner).await;
    subscribe(&mut socket, "lossy", &room, None).await;
    // Just past the subscription's first periodic check (every 2 s), so
    // that the next one is well after the gap below is filled.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    send_range(&second, &owner, &room, 1, 3).await;
    // A message published after them: a gap before it, filled from the
    // database at once.
    send_range(&first, &owner, &room, 4, 4).await;
    let filled = tokio::time::timeout(
        Duration::from_millis(1000),
        offsets(&mut socket, "lossy", 4),
    )
    .await
    .expect("the gap filled at once, not by the periodic check");
    assert_eq!(filled, vec![1, 2, 3, 4]);
    // A lost message with none after it: the periodic check delivers it.
    send_range(&second, &owner, &room, 5, 5).await;
    assert_eq!(offsets(&mut socket, "lossy", 1).await, vec![5]);
    quiet(&mut socket, Duration::from_millis(2500)).await;
}

#[tokio::test]
async fn message_added_resumes_a_backlog_longer_than_a_page_at_once() {
    let app = chat_app().spawn().await;
    let owner = sign_up(&app).await;
    let room = create_room(&app, &owner, "Backlog", "public").await;
    // More than one catch-up page (200): the rest must follow at once, not
    // wait for a new message or the periodic check (2 s).
    send_range(&app, &owner, &room, 1, 250).await;
    let mut socket = subscriber(&app, &owner).await;
    subscribe(&mut socket, "backlog", &room, Some(0)).await;
    let first = offsets(&mut socket, "backlog", 1).await;
    let rest = tokio::time::timeout(
        Duration::from_millis(1500),
        offsets(&mut socket, "backlog", 249),
    )
    .await
    .expect("the whole backlog at once");
    let expected: Vec<i64> = (1..=250).collect();
    assert_eq!([first, rest].concat(), expected);
    quiet(&mut socket, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_kicked_member_s_subscription_completes() {
    let app = chat_app().spawn().await;
    let (owner, guest) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &owner, "Private", "private").await;
    let (status, _) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/chat/rooms/{room}/members"),
        Some(json!({ "username": guest.username })),
    )
    .await;
    assert_eq!(status, 200);
    let mut socket = subscriber(&app, &guest).await;
    subscribe(&mut socket, "k", &room, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    send_range(&app, &owner, &room, 1, 1).await;
    assert_eq!(offsets(&mut socket, "k", 1).await, vec![1]);
    let (status, _) = call(
        &app,
        &owner,
        Method::DELETE,
        &format!("/api/chat/rooms/{room}/members/{}", guest.username),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let got = next(&mut socket).await;
    assert_eq!(got, json!({ "id": "k", "type": "complete" }));
    send_range(&app, &owner, &room, 2, 2).await;
    quiet(&mut socket, Duration::from_millis(1000)).await;
}
