//! Delivery guarantees: a client dropped during a burst resumes with its
//! last offset and gets every later message exactly once, in order, on one
//! node and across two; a resume the server cannot serve says so; a client
//! that stops reading is disconnected and its queue freed.

use std::time::Duration;

use basalt_testkit::TestApp;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{
    Socket, chat_app, connect, create_room, join, next_of, post, send, sign_up, subscribe,
};

const BURST: i64 = 10_000;

/// Sends `count` messages over `socket` without waiting between them, then
/// waits for every ack; the acked offsets.
async fn burst(socket: &mut Socket, room: &str, count: i64) -> Vec<i64> {
    burst_of(socket, room, count, "").await
}

/// Like [`burst`], each body `body` (or `burst <i>` when empty).
async fn burst_of(socket: &mut Socket, room: &str, count: i64, body: &str) -> Vec<i64> {
    let body = body.to_owned();
    let (mut sink, mut stream) = socket.split();
    let room = room.to_owned();
    let sender = async move {
        use futures_util::SinkExt as _;
        for i in 0..count {
            let text = if body.is_empty() {
                format!("burst {i}")
            } else {
                body.clone()
            };
            let frame = json!({ "type": "send", "id": i, "room": room, "body": text });
            sink.feed(Message::text(frame.to_string()))
                .await
                .expect("sent");
        }
        sink.flush().await.expect("flushed");
        sink
    };
    let receiver = async move {
        let mut offsets = Vec::new();
        while (offsets.len() as i64) < count {
            let message = tokio::time::timeout(Duration::from_secs(60), stream.next())
                .await
                .expect("acks keep coming")
                .expect("open")
                .expect("readable");
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).expect("json");
                assert_ne!(frame["type"], "error", "{frame}");
                if frame["type"] == "ack" {
                    offsets.push(frame["offset"].as_i64().expect("offset"));
                }
            }
        }
        (stream, offsets)
    };
    let (sink, (stream, offsets)) = tokio::join!(sender, receiver);
    drop((sink, stream));
    offsets
}

/// The offsets of the next `count` message frames of `room`, with the epoch.
async fn offsets_of(socket: &mut Socket, count: usize) -> Vec<i64> {
    let mut offsets = Vec::with_capacity(count);
    while offsets.len() < count {
        let frame = next_of(socket, "message").await;
        offsets.push(frame["offset"].as_i64().expect("offset"));
    }
    offsets
}

/// Publisher on `sender_app`, reader on `reader_app`: the reader drops its
/// socket mid-burst and resumes; nothing is lost or duplicated.
async fn resume_mid_burst(sender_app: &TestApp, reader_app: &TestApp) {
    let (writer, reader) = (sign_up(sender_app).await, sign_up(sender_app).await);
    let room = create_room(sender_app, &writer, "Burst", "public").await;
    join(sender_app, &reader, &room).await;

    let mut reading = connect(reader_app, &reader).await;
    let epoch = subscribe(&mut reading, &room, None).await["epoch"].clone();
    let mut writing = connect(sender_app, &writer).await;
    let publisher = {
        let room = room.clone();
        async move {
            let mut acked = burst(&mut writing, &room, BURST).await;
            acked.sort_unstable();
            acked
        }
    };
    let first_part = async {
        // Read part of the burst, then drop the connection mid-stream.
        let seen = offsets_of(&mut reading, 3_000).await;
        drop(reading);
        seen
    };
    let (acked, seen) = tokio::join!(publisher, first_part);
    assert_eq!(
        acked,
        (1..=BURST).collect::<Vec<_>>(),
        "offsets are gapless"
    );
    assert_eq!(
        seen,
        (1..=3_000).collect::<Vec<_>>(),
        "live delivery is in order"
    );

    let mut resumed = connect(reader_app, &reader).await;
    let answer = subscribe(
        &mut resumed,
        &room,
        Some(json!({ "offset": 3_000, "epoch": epoch })),
    )
    .await;
    assert_eq!(answer["recovered"], true, "{answer}");
    let rest = offsets_of(&mut resumed, (BURST - 3_000) as usize).await;
    assert_eq!(
        rest,
        (3_001..=BURST).collect::<Vec<_>>(),
        "exactly the missed messages, in order"
    );
    // Then live ones, with nothing replayed twice.
    post(sender_app, &writer, &room, "after the burst").await;
    assert_eq!(next_of(&mut resumed, "message").await["offset"], BURST + 1);
}

#[tokio::test]
async fn a_client_dropped_mid_burst_resumes_without_loss_or_duplicates() {
    let app = chat_app().spawn().await;
    resume_mid_burst(&app, &app).await;
}

#[tokio::test]
async fn across_two_nodes_a_client_resumes_without_loss_or_duplicates() {
    let first = chat_app().spawn().await;
    if first.platform.config.redis_url.is_none() {
        // Nodes share messages through Redis; the embedded pass runs one node.
        return;
    }
    let second = chat_app().node_of(&first).spawn().await;
    resume_mid_burst(&first, &second).await;
}

#[tokio::test]
async fn a_resume_the_server_cannot_serve_says_recovered_false() {
    let app = chat_app()
        .env("BASALT_CHAT__RECOVERY_MAX_MESSAGES", "5")
        .spawn()
        .await;
    let writer = sign_up(&app).await;
    let room = create_room(&app, &writer, "Gaps", "public").await;
    for i in 0..10 {
        post(&app, &writer, &room, &format!("m{i}")).await;
    }
    let mut socket = connect(&app, &writer).await;
    let epoch = subscribe(&mut socket, &room, None).await["epoch"].clone();
    send(&mut socket, json!({ "type": "unsubscribe", "room": room })).await;
    next_of(&mut socket, "unsubscribed").await;

    let within = subscribe(
        &mut socket,
        &room,
        Some(json!({ "offset": 6, "epoch": epoch })),
    )
    .await;
    assert_eq!(within["recovered"], true);
    assert_eq!(offsets_of(&mut socket, 4).await, vec![7, 8, 9, 10]);
    send(&mut socket, json!({ "type": "unsubscribe", "room": room })).await;
    next_of(&mut socket, "unsubscribed").await;

    let too_far = subscribe(
        &mut socket,
        &room,
        Some(json!({ "offset": 2, "epoch": epoch })),
    )
    .await;
    assert_eq!(
        (too_far["recovered"].as_bool(), too_far["offset"].as_i64()),
        (Some(false), Some(10))
    );
    send(&mut socket, json!({ "type": "unsubscribe", "room": room })).await;
    next_of(&mut socket, "unsubscribed").await;
    let other_epoch = subscribe(
        &mut socket,
        &room,
        Some(json!({ "offset": 8, "epoch": "another" })),
    )
    .await;
    assert_eq!(other_epoch["recovered"], false);
    // Either way only messages after the room's newest offset follow.
    post(&app, &writer, &room, "new").await;
    assert_eq!(next_of(&mut socket, "message").await["offset"], 11);
}

/// `name`'s value in the app's metrics, summed over its labels matching `filter`.
async fn metric(app: &TestApp, name: &str, filter: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_and_its_queue_freed() {
    let app = chat_app()
        .env("BASALT_CHAT__SEND_QUEUE_MAX", "16")
        .spawn()
        .await;
    let (writer, idle, watcher) = (
        sign_up(&app).await,
        sign_up(&app).await,
        sign_up(&app).await,
    );
    let room = create_room(&app, &writer, "Firehose", "public").await;
    join(&app, &idle, &room).await;
    join(&app, &watcher, &room).await;
    let mut stalled = connect(&app, &idle).await;
    subscribe(&mut stalled, &room, None).await;
    // From here on `stalled` is never read: its socket buffers fill, then
    // its queue of 16 frames, and the server gives it up.
    let mut reader = connect(&app, &watcher).await;
    subscribe(&mut reader, &room, None).await;
    let mut writing = connect(&app, &writer).await;
    let big = "x".repeat(3_900);
    let mut sent = 0;
    while metric(&app, "basalt_chat_socket_closes_total", "slow_consumer").await < 1.0 {
        assert!(sent < 20_000, "the stalled client was never disconnected");
        burst_of(&mut writing, &room, 200, &big).await;
        sent += 200;
        // The reading subscriber keeps up: it is not the one closed.
        offsets_of(&mut reader, 200).await;
    }
    assert_eq!(
        metric(&app, "basalt_chat_sockets", "").await,
        2.0,
        "only the readers remain"
    );
    drop(stalled);
}
