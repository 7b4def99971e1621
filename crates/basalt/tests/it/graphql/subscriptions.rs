//! Subscriptions over both WebSocket protocols, across nodes, and the
//! Origin check of a cookie-authenticated upgrade.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::blog::{blog_app, sign_up};
use crate::identity::{PASSWORD, sign_in};

pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/graphql` with `protocol` and extra `headers`.
pub(super) async fn open(
    app: &basalt_testkit::TestApp,
    protocol: &str,
    headers: &[(&'static str, String)],
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().expect("header"));
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().expect("header"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, response)| {
            assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
            socket
        })
}

pub(super) async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("sent");
}

/// The next JSON message that is not a keep-alive, within 10 s.
pub(super) async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("readable");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("json");
            if value["type"] != "ka" && value["type"] != "ping" {
                return value;
            }
        }
    }
}

const PUBLISHED: &str = "subscription($tag: String) { articlePublished(tag: $tag) { title tagList author { username } } }";

#[tokio::test]
async fn an_article_published_reaches_subscribers_of_both_protocols() {
    let app = blog_app().await;
    let author = sign_up(&app).await;

    let mut modern = open(&app, "graphql-transport-ws", &[])
        .await
        .expect("upgraded");
    send(
        &mut modern,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await;
    assert_eq!(next(&mut modern).await["type"], "connection_ack");
    send(
        &mut modern,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": PUBLISHED, "variables": { "tag": "live" } } }),
    )
    .await;

    let mut legacy = open(&app, "graphql-ws", &[]).await.expect("upgraded");
    send(
        &mut legacy,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await;
    assert_eq!(next(&mut legacy).await["type"], "connection_ack");
    send(
        &mut legacy,
        json!({ "id": "7", "type": "start", "payload": { "query": PUBLISHED } }),
    )
    .await;
    // The subscriptions start listening as their messages are processed.
    tokio::time::sleep(Duration::from_millis(500)).await;

    author.publish(&app, "Untagged", &[]).await;
    author.publish(&app, "Live one", &["live"]).await;

    let got = next(&mut modern).await;
    assert_eq!(got["type"], "next", "{got}");
    assert_eq!(got["id"], "1");
    assert_eq!(
        got["payload"]["data"]["articlePublished"],
        json!({ "title": "Live one", "tagList": ["live"], "author": { "username": author.username } }),
        "the tag filter lets only the tagged article through"
    );
    for title in ["Untagged", "Live one"] {
        let got = next(&mut legacy).await;
        assert_eq!(got["type"], "data", "{got}");
        assert_eq!(got["id"], "7");
        assert_eq!(got["payload"]["data"]["articlePublished"]["title"], title);
    }
}

#[tokio::test]
async fn comments_added_reach_the_articles_subscribers() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let slug = author.publish(&app, "Discussed", &[]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    let other = author.publish(&app, "Quiet", &[]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    let mut socket = open(&app, "graphql-transport-ws", &[])
        .await
        .expect("upgraded");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(next(&mut socket).await["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "c", "type": "subscribe", "payload": { "query": "subscription($s: String!) { commentAdded(slug: $s) { body author { username } } }", "variables": { "s": slug } } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (on, text) in [(&other, "elsewhere"), (&slug, "here")] {
        author
            .json_of(
                &app,
                Method::POST,
                &format!("/api/articles/{on}/comments"),
                Some(json!({ "comment": { "body": text } })),
            )
            .await;
    }
    let got = next(&mut socket).await;
    assert_eq!(
        got["payload"]["data"]["commentAdded"]["body"], "here",
        "{got}"
    );

    // An unknown article is an error on the subscription, coded.
    send(
        &mut socket,
        json!({ "id": "d", "type": "subscribe", "payload": { "query": "subscription { commentAdded(slug: \"nope\") { body } }" } }),
    )
    .await;
    let got = next(&mut socket).await;
    assert_eq!(got["id"], "d", "{got}");
    let errors = if got["type"] == "error" {
        got["payload"].clone()
    } else {
        got["payload"]["errors"].clone()
    };
    assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{got}");
}

#[tokio::test]
async fn a_cookie_opens_a_websocket_only_from_an_allowed_origin() {
    let app = blog_app().await;
    let user = sign_up(&app).await;
    let browser = sign_in(&app, &user.email, PASSWORD).await;
    let refused = open(
        &app,
        "graphql-transport-ws",
        &[
            ("cookie", browser.cookie.clone()),
            ("origin", "https://evil.example".into()),
        ],
    )
    .await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    let mut socket = open(
        &app,
        "graphql-transport-ws",
        &[
            ("cookie", browser.cookie.clone()),
            ("origin", browser.origin.clone()),
        ],
    )
    .await
    .expect("upgraded from our own origin");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(next(&mut socket).await["type"], "connection_ack");

    // A token in connection_init, as browsers must send it.
    let mut socket = open(&app, "graphql-transport-ws", &[])
        .await
        .expect("upgraded");
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer nonsense" } }),
    )
    .await;
    let got = socket.next().await;
    assert!(
        !matches!(&got, Some(Ok(Message::Text(t))) if t.contains("connection_ack")),
        "a bad token in connection_init is refused: {got:?}"
    );
}

#[tokio::test]
async fn an_article_published_on_one_node_reaches_a_subscriber_on_another() {
    let first = blog_app().await;
    if first.platform.config.amqp_url.is_none() {
        // Nodes hear each other's events through the broker; the embedded
        // pass runs one node.
        return;
    }
    let second = crate::identity::identity_app()
        .node_of(&first)
        .spawn()
        .await;
    let author = sign_up(&first).await;
    let mut socket = open(&second, "graphql-transport-ws", &[])
        .await
        .expect("upgraded");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(next(&mut socket).await["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "x", "type": "subscribe", "payload": { "query": PUBLISHED } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    author.publish(&first, "Across nodes", &[]).await;
    let got = next(&mut socket).await;
    assert_eq!(
        got["payload"]["data"]["articlePublished"]["title"], "Across nodes",
        "{got}"
    );
    // Exactly once.
    let again = tokio::time::timeout(Duration::from_millis(1500), socket.next()).await;
    assert!(
        !matches!(&again, Ok(Some(Ok(Message::Text(t)))) if t.contains("Across nodes")),
        "delivered twice: {again:?}"
    );
}
