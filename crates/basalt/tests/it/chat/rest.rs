//! The REST API: rooms, members, moderation, history, edits, reactions,
//! idempotent sends, read state and mentions.

use reqwest::Method;
use serde_json::{Value, json};

use super::{call, chat_app, create_room, join, post, sign_up};

fn offsets(page: &Value) -> Vec<i64> {
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["offset"].as_i64().expect("offset"))
        .collect()
}

#[tokio::test]
async fn rooms_are_created_listed_joined_and_left() {
    let app = chat_app().spawn().await;
    let (owner, other) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &owner, "General", "public").await;

    let (status, rooms) = call(&app, &other, Method::GET, "/api/chat/rooms", None).await;
    assert_eq!(status, 200);
    let listed = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == room.as_str())
        .expect("a public room is listed to everyone")
        .clone();
    assert_eq!(listed["membership"], Value::Null);
    assert_eq!(listed["kind"], "public");
    assert_eq!(listed["last_offset"], 0);

    join(&app, &other, &room).await;
    let (_, got) = call(
        &app,
        &other,
        Method::GET,
        &format!("/api/chat/rooms/{room}"),
        None,
    )
    .await;
    assert_eq!(got["room"]["membership"]["role"], "member");
    assert_eq!(got["room"]["membership"]["state"], "joined");

    let (status, _) = call(
        &app,
        &other,
        Method::POST,
        &format!("/api/chat/rooms/{room}/leave"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, got) = call(
        &app,
        &other,
        Method::GET,
        &format!("/api/chat/rooms/{room}"),
        None,
    )
    .await;
    assert_eq!(got["room"]["membership"], Value::Null);

    // Bad input is a problem, not a room.
    let (status, problem) = call(
        &app,
        &owner,
        Method::POST,
        "/api/chat/rooms",
        Some(json!({ "name": "  ", "kind": "public" })),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let (status, _) = call(
        &app,
        &owner,
        Method::POST,
        "/api/chat/rooms",
        Some(json!({ "name": "x", "kind": "direct" })),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(
        &app,
        &owner,
        Method::POST,
        "/api/chat/rooms",
        Some(json!({ "name": "x", "kind": "secret" })),
    )
    .await;
    assert!(status == 400 || status == 422, "{status}");
}

#[tokio::test]
async fn private_rooms_are_hidden_and_invite_only_rooms_need_an_invitation() {
    let app = chat_app().spawn().await;
    let (owner, guest, outsider) = (
        sign_up(&app).await,
        sign_up(&app).await,
        sign_up(&app).await,
    );

    let private = create_room(&app, &owner, "Staff", "private").await;
    let (status, _) = call(
        &app,
        &outsider,
        Method::GET,
        &format!("/api/chat/rooms/{private}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "a private room is not known to outsiders");
    let (_, rooms) = call(&app, &outsider, Method::GET, "/api/chat/rooms", None).await;
    assert!(!rooms.to_string().contains(&private));
    let (status, _) = call(
        &app,
        &outsider,
        Method::GET,
        &format!("/api/chat/rooms/{private}/messages"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, member) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/chat/rooms/{private}/members"),
        Some(json!({ "username": guest.username })),
    )
    .await;
    assert_eq!(status, 200, "{member}");
    assert_eq!(member["member"]["state"], "joined");
    post(&app, &guest, &private, "hello staff").await;

    let invite_only = create_room(&app, &owner, "Club", "invite_only").await;
    let (status, _) = call(
        &app,
        &outsider,
        Method::POST,
        &format!("/api/chat/rooms/{invite_only}/join"),
        None,
    )
    .await;
    assert_eq!(status, 403, "joining needs an invitation");
    let (status, _) = call(
        &app,
        &outsider,
        Method::GET,
        &format!("/api/chat/rooms/{invite_only}/messages"),
        None,
    )
    .await;
    assert_eq!(status, 403, "an invite-only room is listed, not readable");
    let (_, invited) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/chat/rooms/{invite_only}/members"),
        Some(json!({ "username": outsider.username })),
    )
    .await;
    assert_eq!(invited["member"]["state"], "invited");
    join(&app, &outsider, &invite_only).await;
    post(&app, &outsider, &invite_only, "thanks for the invite").await;
}

#[tokio::test]
async fn moderators_mute_kick_and_ban_and_only_the_owner_names_them() {
    let app = chat_app().spawn().await;
    let (owner, moderator, member) = (
        sign_up(&app).await,
        sign_up(&app).await,
        sign_up(&app).await,
    );
    let room = create_room(&app, &owner, "Town hall", "public").await;
    join(&app, &moderator, &room).await;
    join(&app, &member, &room).await;
    let path = |who: &str| format!("/api/chat/rooms/{room}/members/{who}");

    let (status, promoted) = call(
        &app,
        &owner,
        Method::PUT,
        &path(&moderator.username),
        Some(json!({ "role": "moderator" })),
    )
    .await;
    assert_eq!(status, 200, "{promoted}");
    assert_eq!(promoted["member"]["role"], "moderator");
    let (status, _) = call(
        &app,
        &moderator,
        Method::PUT,
        &path(&member.username),
        Some(json!({ "role": "moderator" })),
    )
    .await;
    assert_eq!(status, 403, "only the owner changes roles");
    let (status, _) = call(
        &app,
        &member,
        Method::PUT,
        &path(&moderator.username),
        Some(json!({ "muted": true })),
    )
    .await;
    assert_eq!(status, 403, "members do not moderate");

    let (status, muted) = call(
        &app,
        &moderator,
        Method::PUT,
        &path(&member.username),
        Some(json!({ "muted": true })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(muted["member"]["muted"], true);
    let (status, _) = call(
        &app,
        &member,
        Method::POST,
        &format!("/api/chat/rooms/{room}/messages"),
        Some(json!({ "body": "can I speak?" })),
    )
    .await;
    assert_eq!(status, 403, "muted members may not send");
    call(
        &app,
        &moderator,
        Method::PUT,
        &path(&member.username),
        Some(json!({ "muted": false })),
    )
    .await;
    post(&app, &member, &room, "thank you").await;

    let (status, _) = call(
        &app,
        &moderator,
        Method::DELETE,
        &path(&owner.username),
        None,
    )
    .await;
    assert_eq!(status, 403, "a moderator does not kick the owner");
    let (status, _) = call(
        &app,
        &moderator,
        Method::DELETE,
        &path(&member.username),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, members) = call(
        &app,
        &owner,
        Method::GET,
        &format!("/api/chat/rooms/{room}/members"),
        None,
    )
    .await;
    assert!(!members.to_string().contains(&member.username), "{members}");

    let (status, banned) = call(
        &app,
        &moderator,
        Method::POST,
        &format!("/api/chat/rooms/{room}/bans"),
        Some(json!({ "username": member.username })),
    )
    .await;
    assert_eq!(status, 200, "{banned}");
    assert_eq!(banned["member"]["state"], "banned");
    let (status, _) = call(
        &app,
        &member,
        Method::POST,
        &format!("/api/chat/rooms/{room}/join"),
        None,
    )
    .await;
    assert_eq!(status, 403, "the banned may not join");
    let (status, _) = call(
        &app,
        &member,
        Method::GET,
        &format!("/api/chat/rooms/{room}/messages"),
        None,
    )
    .await;
    assert_eq!(status, 403, "nor read a public room");
    // Deleting the row lifts the ban.
    let (status, _) = call(
        &app,
        &moderator,
        Method::DELETE,
        &path(&member.username),
        None,
    )
    .await;
    assert_eq!(status, 204);
    join(&app, &member, &room).await;

    // The owner leaves: the moderator inherits the room.
    let (status, _) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/chat/rooms/{room}/leave"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, got) = call(
        &app,
        &moderator,
        Method::GET,
        &format!("/api/chat/rooms/{room}"),
        None,
    )
    .await;
    assert_eq!(got["room"]["membership"]["role"], "owner");
}

#[tokio::test]
async fn offsets_are_gapless_and_history_pages_both_ways() {
    let app = chat_app().spawn().await;
    let (a, b) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &a, "Busy", "public").await;
    join(&app, &b, &room).await;
    // Concurrent senders on one room still get 1, 2, 3… with no gap.
    let sends = (0..20).map(|i| {
        let (app, who, room) = (&app, if i % 2 == 0 { &a } else { &b }, &room);
        async move { post(app, who, room, &format!("message {i}")).await }
    });
    let mut got: Vec<i64> = futures_util::future::join_all(sends)
        .await
        .iter()
        .map(|m| m["offset"].as_i64().expect("offset"))
        .collect();
    got.sort_unstable();
    assert_eq!(got, (1..=20).collect::<Vec<_>>());

    let page = |q: &str| {
        let path = format!("/api/chat/rooms/{room}/messages{q}");
        let (app, a) = (&app, &a);
        async move {
            let (status, body) = call(app, a, Method::GET, &path, None).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let newest = page("?limit=5").await;
    assert_eq!(offsets(&newest), vec![16, 17, 18, 19, 20]);
    assert_eq!(newest["has_more"], true);
    assert_eq!(newest["last_offset"], 20);
    assert!(newest["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(offsets(&page("?after=2&limit=3").await), vec![3, 4, 5]);
    assert_eq!(offsets(&page("?before=4").await), vec![1, 2, 3]);
    assert_eq!(page("?before=4").await["has_more"], false);
    assert_eq!(offsets(&page("?after=18").await), vec![19, 20]);
    assert_eq!(page("?after=18").await["has_more"], false);
    assert_eq!(offsets(&page("?after=5&before=9").await), vec![6, 7, 8]);
    let (status, _) = call(
        &app,
        &a,
        Method::GET,
        &format!("/api/chat/rooms/{room}/messages?limit=0"),
        None,
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn messages_are_edited_deleted_to_tombstones_reacted_to_and_sanitised() {
    let app = chat_app().spawn().await;
    let (author, other) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &author, "Edits", "public").await;
    join(&app, &other, &room).await;
    let message = post(
        &app,
        &author,
        &room,
        "Hello **world** <script>alert(1)</script>",
    )
    .await;
    let html = message["body_html"].as_str().expect("html");
    assert!(html.contains("<strong>world</strong>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    let id = message["id"].as_i64().expect("id");
    let path = format!("/api/chat/rooms/{room}/messages/{id}");

    let (status, _) = call(
        &app,
        &other,
        Method::PATCH,
        &path,
        Some(json!({ "body": "mine now" })),
    )
    .await;
    assert_eq!(status, 403, "only the author edits");
    let (status, edited) = call(
        &app,
        &author,
        Method::PATCH,
        &path,
        Some(json!({ "body": "Hello *again*" })),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["message"]["body"], "Hello *again*");
    assert!(edited["message"]["edited_at"].is_string());
    assert_eq!(edited["message"]["offset"], message["offset"]);

    let (status, reacted) = call(
        &app,
        &other,
        Method::POST,
        &format!("{path}/reactions"),
        Some(json!({ "emoji": "👍" })),
    )
    .await;
    assert_eq!(status, 200, "{reacted}");
    assert_eq!(
        reacted["message"]["reactions"],
        json!([{ "emoji": "👍", "count": 1 }])
    );
    call(
        &app,
        &author,
        Method::POST,
        &format!("{path}/reactions"),
        Some(json!({ "emoji": "👍" })),
    )
    .await;
    let (_, twice) = call(
        &app,
        &other,
        Method::POST,
        &format!("{path}/reactions"),
        Some(json!({ "emoji": "👍" })),
    )
    .await;
    assert_eq!(
        twice["message"]["reactions"],
        json!([{ "emoji": "👍", "count": 2 }]),
        "one per user"
    );
    let (status, _) = call(
        &app,
        &other,
        Method::POST,
        &format!("{path}/reactions"),
        Some(json!({ "emoji": "not one" })),
    )
    .await;
    assert_eq!(status, 422);
    let (_, taken_back) = call(
        &app,
        &other,
        Method::DELETE,
        &format!("{path}/reactions/%F0%9F%91%8D"),
        None,
    )
    .await;
    assert_eq!(
        taken_back["message"]["reactions"],
        json!([{ "emoji": "👍", "count": 1 }])
    );

    let reply = {
        let (status, body) = call(
            &app,
            &other,
            Method::POST,
            &format!("/api/chat/rooms/{room}/messages"),
            Some(json!({ "body": "a reply", "reply_to": id })),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body["message"].clone()
    };
    assert_eq!(reply["reply_to"], id);

    let (status, _) = call(&app, &other, Method::DELETE, &path, None).await;
    assert_eq!(status, 403, "members delete their own messages only");
    let (status, _) = call(&app, &author, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (_, history) = call(
        &app,
        &other,
        Method::GET,
        &format!("/api/chat/rooms/{room}/messages"),
        None,
    )
    .await;
    let tombstone = &history["messages"][0];
    assert_eq!(tombstone["id"], id);
    assert_eq!(tombstone["deleted"], true);
    assert_eq!(tombstone["body"], "");
    assert_eq!(tombstone["body_html"], "");
    assert_eq!(tombstone["reactions"], json!([]));
    assert_eq!(
        offsets(&history),
        vec![1, 2],
        "the tombstone keeps its offset"
    );
}

#[tokio::test]
async fn a_nonce_sent_twice_posts_once() {
    let app = chat_app().spawn().await;
    let author = sign_up(&app).await;
    let room = create_room(&app, &author, "Retries", "public").await;
    let body = json!({ "body": "exactly once", "nonce": "client-7f3a" });
    let path = format!("/api/chat/rooms/{room}/messages");
    let (_, first) = call(&app, &author, Method::POST, &path, Some(body.clone())).await;
    let (status, again) = call(&app, &author, Method::POST, &path, Some(body)).await;
    assert_eq!(status, 201);
    assert_eq!(again["message"]["id"], first["message"]["id"]);
    assert_eq!(again["message"]["offset"], 1);
    let (_, history) = call(&app, &author, Method::GET, &path, None).await;
    assert_eq!(offsets(&history), vec![1]);
}

#[tokio::test]
async fn unread_and_mention_counts_follow_the_read_offset_forward_only() {
    let app = chat_app().spawn().await;
    let (a, b) = (sign_up(&app).await, sign_up(&app).await);
    let room = create_room(&app, &a, "Mentions", "public").await;
    join(&app, &b, &room).await;
    post(&app, &a, &room, &format!("hi @{}", b.username)).await;
    post(&app, &a, &room, "no mention").await;
    let third = post(
        &app,
        &a,
        &room,
        &format!("@{} again", b.username.to_uppercase()),
    )
    .await;
    assert_eq!(third["mentions"], json!([b.username]));

    let unread_of = |who| {
        let (app, room) = (&app, room.clone());
        async move {
            let (status, body) = call(app, who, Method::GET, "/api/chat/unread", None).await;
            assert_eq!(status, 200);
            body["rooms"]
                .as_array()
                .expect("rooms")
                .iter()
                .find(|r| r["room"] == room.as_str())
                .cloned()
                .expect("the room")
        }
    };
    let got = unread_of(&b).await;
    assert_eq!(
        (got["unread"].as_i64(), got["mentions"].as_i64()),
        (Some(3), Some(2))
    );
    let got = unread_of(&a).await;
    assert_eq!(
        (got["unread"].as_i64(), got["mentions"].as_i64()),
        (Some(0), Some(0)),
        "senders have read their own"
    );

    let read = format!("/api/chat/rooms/{room}/read");
    let (status, moved) = call(&app, &b, Method::PUT, &read, Some(json!({ "offset": 1 }))).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        (moved["unread"].as_i64(), moved["mentions"].as_i64()),
        (Some(2), Some(1))
    );
    let (_, back) = call(&app, &b, Method::PUT, &read, Some(json!({ "offset": 0 }))).await;
    assert_eq!(back["read_offset"], 1, "the read offset never moves back");
    let (_, past) = call(&app, &b, Method::PUT, &read, Some(json!({ "offset": 99 }))).await;
    assert_eq!(
        (past["read_offset"].as_i64(), past["unread"].as_i64()),
        (Some(3), Some(0))
    );
    assert_eq!(unread_of(&b).await, past);
}

#[tokio::test]
async fn a_direct_room_is_one_per_pair_and_private_to_it() {
    let app = chat_app().spawn().await;
    let (a, b, c) = (
        sign_up(&app).await,
        sign_up(&app).await,
        sign_up(&app).await,
    );
    let (status, first) = call(
        &app,
        &a,
        Method::POST,
        "/api/chat/dms",
        Some(json!({ "username": b.username })),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["room"]["kind"], "direct");
    let (_, second) = call(
        &app,
        &b,
        Method::POST,
        "/api/chat/dms",
        Some(json!({ "username": a.username })),
    )
    .await;
    assert_eq!(second["room"]["id"], first["room"]["id"]);
    let room = first["room"]["id"].as_str().expect("id");
    post(&app, &b, room, "just us").await;
    let (status, _) = call(
        &app,
        &c,
        Method::GET,
        &format!("/api/chat/rooms/{room}/messages"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        &a,
        Method::POST,
        "/api/chat/dms",
        Some(json!({ "username": a.username })),
    )
    .await;
    assert_eq!(status, 422, "not with oneself");
    let (status, _) = call(
        &app,
        &a,
        Method::POST,
        &format!("/api/chat/rooms/{room}/leave"),
        None,
    )
    .await;
    assert_eq!(status, 403);
}
