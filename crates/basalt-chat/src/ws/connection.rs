//! One socket: its frames in, and everything it is sent, in one task.
//!
//! Answers (`subscribed`, `ack`, `error`, …) are written as the frames that
//! ask for them are handled. Published frames arrive through the bounded
//! queue the hub fills ([`Outbox`]); messages among them are delivered by
//! offset, per room: one already delivered is dropped, and one past the
//! next expected offset means a gap, filled from the database before it
//! ([`Connection::catch_up`]). So a subscription delivers every message
//! after its start exactly once and in order, whatever the broadcast lost
//! or reordered.
//!
//! Back-pressure: the hub never waits for a socket. A full queue marks the
//! connection overflowed; a live connection is then closed with 4008 (it
//! reads too slowly), at once even if a write to it is stuck. A connection
//! catching up on history writes at the pace the client reads, and what the
//! queue dropped meanwhile is read from the database again. Memory per
//! connection is bounded by the queue, one history page and the socket's
//! buffers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::http::{HeaderValue, Request, header};
use basalt_platform::error::{ErrorKind, Failure};
use basalt_platform::ratelimit::{InProcessRateLimiter, Quota};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Sockets;
use crate::frames::{self, ClientFrame, Since};
use crate::hub::{ConnectionSignals, Outbox, Outgoing, Topic};

/// How long a client has to authenticate.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a write may take before the client counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages per database read while catching up.
const CATCH_UP_PAGE: i64 = 200;

/// Why a connection ended (the `reason` label of the close counter).
type End = &'static str;

/// A subscribed room: the next offset to deliver, and its epoch.
struct Subscription {
    next: i64,
    epoch: String,
}

struct Connection {
    sockets: Sockets,
    socket: WebSocket,
    id: u64,
    outbox: Outbox,
    queue: mpsc::Receiver<Outgoing>,
    user: Option<Uuid>,
    rooms: HashMap<Uuid, Subscription>,
    topics: HashSet<Topic>,
    limits: InProcessRateLimiter,
    status: String,
    last_heard: Instant,
}

/// Serves one upgraded socket until it closes; `user` when the upgrade
/// carried credentials.
pub(super) async fn serve(sockets: Sockets, socket: WebSocket, user: Option<Uuid>) {
    let guard = sockets.hub.connect();
    let (tx, queue) = mpsc::channel(sockets.chat.config.send_queue_max);
    sockets.metrics.sockets.inc();
    let metrics = sockets.metrics.clone();
    let mut connection = Connection {
        sockets,
        socket,
        id: guard.id,
        outbox: Outbox {
            queue: tx,
            signals: Arc::new(ConnectionSignals::default()),
        },
        queue,
        user: None,
        rooms: HashMap::new(),
        topics: HashSet::new(),
        limits: InProcessRateLimiter::new(),
        status: "online".to_owned(),
        last_heard: Instant::now(),
    };
    let end = match user {
        Some(user) => connection.authenticated(user).await,
        None => Ok(()),
    };
    let end = match end {
        Ok(()) => connection.run().await.err().unwrap_or("client"),
        Err(end) => end,
    };
    connection.leave_all();
    metrics.sockets.dec();
    metrics.closed(end);
    drop(guard);
}

fn code_of(failure: &Failure) -> &'static str {
    failure.kind.graphql_code()
}

fn text_of(failure: &Failure) -> String {
    if let Some(detail) = &failure.detail {
        return detail.clone();
    }
    if !failure.fields.is_empty() {
        return failure
            .fields
            .iter()
            .map(|f| format!("{} {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
    }
    match failure.kind {
        ErrorKind::Unauthenticated => "authenticate first".into(),
        ErrorKind::RateLimited => "over the rate limit; the frame was dropped".into(),
        ErrorKind::Unavailable => "temporarily unavailable; retry".into(),
        _ => "failed".into(),
    }
}

impl Connection {
    fn chat(&self) -> &crate::service::Chat {
        &self.sockets.chat
    }

    async fn run(&mut self) -> Result<(), End> {
        let auth_deadline = tokio::time::sleep(AUTH_TIMEOUT);
        tokio::pin!(auth_deadline);
        let ttl = self.chat().presence_ttl();
        let mut tick = tokio::time::interval(ttl / 3);
        tick.reset();
        let closing = self.sockets.hub.closing().clone();
        let signals = self.outbox.signals.clone();
        loop {
            tokio::select! {
                biased;
                () = closing.cancelled() => {
                    return self.close(1012, "node shutting down; reconnect elsewhere", "shutdown").await;
                }
                () = &mut auth_deadline, if self.user.is_none() => {
                    return self.close(4001, "not authenticated in time", "unauthenticated").await;
                }
                () = signals.overflow.notified() => {
                    if signals.overflowed.swap(false, Ordering::AcqRel) {
                        return self.close(4008, "send queue overflowed; read faster", "slow_consumer").await;
                    }
                }
                // What was published for the client goes out before more of
                // its frames are read: a client that floods frames slows its
                // own reading, and never starves its queue into overflow.
                Some(item) = self.queue.recv() => self.on_item(item).await?,
                incoming = self.socket.recv() => {
                    self.last_heard = Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(text))) => self.on_frame(&text).await?,
                        Some(Ok(Message::Binary(_))) => {
                            return self.close(1003, "text frames only", "error").await;
                        }
                        Some(Ok(Message::Close(_))) | None => return Err("client"),
                        Some(Ok(_)) => {}
                        Some(Err(_)) => return Err("error"),
                    }
                }
                _ = tick.tick(), if self.user.is_some() => self.on_tick(ttl).await?,
            }
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str, end: End) -> Result<(), End> {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.send(frame)).await;
        Err(end)
    }

    /// Writes a frame; a live connection whose queue overflows meanwhile
    /// is given up at once (a client that stopped reading blocks the write).
    async fn write(&mut self, frame: Utf8Bytes) -> Result<(), End> {
        let signals = self.outbox.signals.clone();
        let send = tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(Message::Text(frame)));
        tokio::pin!(send);
        loop {
            tokio::select! {
                written = &mut send => {
                    return match written {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(_)) => Err("error"),
                        Err(_) => Err("slow_consumer"),
                    };
                }
                () = signals.overflow.notified() => {
                    if signals.overflowed.load(Ordering::Acquire) {
                        return Err("slow_consumer");
                    }
                }
            }
        }
    }

    /// Writes a frame at the client's pace (catching up).
    async fn write_plain(&mut self, frame: Utf8Bytes) -> Result<(), End> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(Message::Text(frame))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("error"),
            Err(_) => Err("slow_consumer"),
        }
    }

    async fn write_str(&mut self, frame: String) -> Result<(), End> {
        self.write(Utf8Bytes::from(frame)).await
    }

    async fn write_bytes(&mut self, frame: Bytes) -> Result<(), End> {
        match Utf8Bytes::try_from(frame) {
            Ok(text) => self.write(text).await,
            Err(_) => Ok(()),
        }
    }

    async fn fail(&mut self, id: &Option<Value>, failure: Failure) -> Result<(), End> {
        failure.log();
        let frame = frames::error(id, code_of(&failure), &text_of(&failure));
        self.write_str(frame).await
    }

    async fn authenticated(&mut self, user: Uuid) -> Result<(), End> {
        self.user = Some(user);
        self.listen(Topic::User(user), 0);
        if let Err(failure) = self.sockets.chat.heartbeat(user, "online").await {
            failure.log();
        }
        match self.sockets.chat.user(user).await {
            Ok(person) => self.write_str(frames::authenticated(&person)).await,
            Err(_) => self.close(4003, "the account is gone", "signed_out").await,
        }
    }

    fn listen(&mut self, topic: Topic, head: i64) {
        self.sockets
            .hub
            .listen(topic, self.id, self.outbox.clone(), head);
        self.topics.insert(topic);
    }

    fn unlisten(&mut self, topic: Topic) {
        self.sockets.hub.unlisten(topic, self.id);
        self.topics.remove(&topic);
    }

    fn leave_all(&mut self) {
        for topic in std::mem::take(&mut self.topics) {
            self.sockets.hub.unlisten(topic, self.id);
        }
    }

    /// Counts one `what` against the connection's own per-minute limit.
    fn local_limit(&self, what: &str) -> Result<(), Failure> {
        let limits = &self.chat().config.rate_limits;
        let per_minute = if what == "typing" {
            limits.typing_per_minute
        } else {
            limits.sends_per_minute
        };
        let decision = self
            .limits
            .check_at(what, Quota::per_minute(per_minute), Instant::now());
        if decision.allowed {
            Ok(())
        } else {
            Err(Failure::rate_limited(decision))
        }
    }

    async fn on_tick(&mut self, ttl: Duration) -> Result<(), End> {
        let Some(user) = self.user else {
            return Ok(());
        };
        if self.last_heard.elapsed() > ttl * 2 {
            return self.close(1001, "no answer from the client", "error").await;
        }
        if let Ok(None) = self.sockets.chat.identity.standing(user).await {
            return self.close(4003, "the account is gone", "signed_out").await;
        }
        let status = self.status.clone();
        if let Err(failure) = self.sockets.chat.heartbeat(user, &status).await {
            failure.log();
        }
        // Browsers answer pings by themselves: a client that has gone away
        // stops answering, and is closed above.
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(Message::Ping(Bytes::new())))
            .await;
        Ok(())
    }

    async fn on_item(&mut self, item: Outgoing) -> Result<(), End> {
        match item {
            Outgoing::Frame(frame) => self.write_bytes(frame).await,
            Outgoing::Room {
                room,
                offset,
                frame,
            } => {
                let Some(sub) = self.rooms.get_mut(&room) else {
                    return Ok(());
                };
                match offset {
                    None => self.write_bytes(frame).await,
                    Some(offset) if offset < sub.next => Ok(()),
                    Some(offset) if offset == sub.next => {
                        sub.next += 1;
                        self.sockets.metrics.delivered.inc();
                        self.write_bytes(frame).await
                    }
                    // A gap: what lies between is in the database, and so is
                    // this message (it committed before it was published).
                    Some(_) => self.catch_up(room).await,
                }
            }
            Outgoing::Removed { room, frame } => {
                if self.rooms.remove(&room).is_some() {
                    self.unlisten(Topic::Room(room));
                    self.write_bytes(frame).await?;
                }
                Ok(())
            }
            Outgoing::Resync { room } => {
                if self.rooms.contains_key(&room) {
                    self.catch_up(room).await?;
                }
                Ok(())
            }
        }
    }

    /// Delivers `room`'s messages from the database, from its next offset
    /// to the newest, at the client's pace. If the queue overflowed
    /// meanwhile, what it dropped is read again: every subscribed room
    /// catches up in turn.
    async fn catch_up(&mut self, room: Uuid) -> Result<(), End> {
        let mut pending = VecDeque::from([room]);
        while let Some(room) = pending.pop_front() {
            while let Some(sub) = self.rooms.get(&room) {
                let (after, epoch) = (sub.next - 1, sub.epoch.clone());
                let page = match self
                    .sockets
                    .chat
                    .messages_after(room, after, CATCH_UP_PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(failure) => {
                        // Left for the next gap or sweep to retry.
                        failure.log();
                        break;
                    }
                };
                let full = page.len() as i64 == CATCH_UP_PAGE;
                for message in page {
                    self.write_plain(Utf8Bytes::from(frames::message(&message, &epoch)))
                        .await?;
                    self.sockets.metrics.delivered.inc();
                    self.sockets.metrics.caught_up.inc();
                    if let Some(sub) = self.rooms.get_mut(&room) {
                        sub.next = message.offset + 1;
                    }
                }
                if !full {
                    break;
                }
            }
            if self.outbox.signals.overflowed.swap(false, Ordering::AcqRel) {
                for other in self.rooms.keys() {
                    if !pending.contains(other) {
                        pending.push_back(*other);
                    }
                }
            }
        }
        Ok(())
    }

    async fn on_frame(&mut self, text: &str) -> Result<(), End> {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                let id = serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| v.get("id").cloned());
                let failure = Failure::bad_request(format!("bad frame: {e}"));
                return self.fail(&id, failure).await;
            }
        };
        let Some(user) = self.user else {
            return match frame {
                ClientFrame::Auth { token } => self.auth(&token).await,
                ClientFrame::Ping { id } => self.write_str(frames::pong(&id)).await,
                _ => {
                    self.fail(&None, Failure::new(ErrorKind::Unauthenticated))
                        .await
                }
            };
        };
        match frame {
            ClientFrame::Auth { .. } => {
                self.fail(&None, Failure::bad_request("already authenticated"))
                    .await
            }
            ClientFrame::Ping { id } => self.write_str(frames::pong(&id)).await,
            ClientFrame::Subscribe { id, room, since } => {
                self.subscribe(user, id, room, since).await
            }
            ClientFrame::Unsubscribe { id, room } => {
                if self.rooms.remove(&room).is_some() {
                    self.unlisten(Topic::Room(room));
                }
                self.write_str(frames::unsubscribed(&id, room)).await
            }
            ClientFrame::Send {
                id,
                room,
                body,
                reply_to,
                nonce,
            } => {
                if let Err(failure) = self.local_limit("send") {
                    return self.fail(&id, failure).await;
                }
                let post = crate::service::messages::Post {
                    body,
                    reply_to,
                    nonce,
                };
                match self.sockets.chat.send(user, room, post).await {
                    Ok(message) => {
                        self.write_str(frames::ack(&id, message.offset, message.id))
                            .await
                    }
                    Err(failure) => self.fail(&id, failure).await,
                }
            }
            ClientFrame::Read { id, room, offset } => {
                match self.sockets.chat.mark_read(user, room, offset).await {
                    Ok(_) => Ok(()),
                    Err(failure) => self.fail(&id, failure).await,
                }
            }
            ClientFrame::Typing { id, room } => {
                if let Err(failure) = self.local_limit("typing") {
                    return self.fail(&id, failure).await;
                }
                match self.sockets.chat.typing(user, room).await {
                    Ok(()) => Ok(()),
                    Err(failure) => self.fail(&id, failure).await,
                }
            }
            ClientFrame::Presence { id, status } => {
                match self.sockets.chat.heartbeat(user, &status).await {
                    Ok(()) => {
                        self.status = status;
                        Ok(())
                    }
                    Err(failure) => self.fail(&id, failure).await,
                }
            }
        }
    }

    async fn auth(&mut self, token: &str) -> Result<(), End> {
        let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) else {
            return self.close(4001, "bad token", "unauthenticated").await;
        };
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.headers.insert(header::AUTHORIZATION, value);
        match super::user_of(&self.sockets.chat, &parts).await {
            Ok(Some(user)) => self.authenticated(user).await,
            _ => self.close(4001, "bad token", "unauthenticated").await,
        }
    }

    async fn subscribe(
        &mut self,
        user: Uuid,
        id: Option<Value>,
        room: Uuid,
        since: Option<Since>,
    ) -> Result<(), End> {
        if self.rooms.contains_key(&room) {
            let failure = Failure::bad_request("already subscribed; unsubscribe first");
            return self.fail(&id, failure).await;
        }
        let access = match self.sockets.chat.access(user, room).await {
            Ok(access) => access,
            Err(failure) => return self.fail(&id, failure).await,
        };
        if let Err(failure) = access.require_read() {
            return self.fail(&id, failure).await;
        }
        let head = access.room.last_offset;
        let max_gap = self.chat().config.recovery_max_messages;
        let resume = since.filter(|s| {
            s.epoch == access.room.epoch
                && s.offset >= 0
                && s.offset <= head
                && head - s.offset <= max_gap
        });
        let recovered = resume.is_some();
        let next = resume.map_or(head + 1, |s| s.offset + 1);
        // Listening first: what is published from now on is queued, what
        // committed before is read by the catch-up below.
        self.listen(Topic::Room(room), head);
        let epoch = access.room.epoch;
        self.write_str(frames::subscribed(&id, room, &epoch, head, recovered))
            .await?;
        self.rooms.insert(room, Subscription { next, epoch });
        self.catch_up(room).await
    }
}
