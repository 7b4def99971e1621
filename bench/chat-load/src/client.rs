//! One WebSocket client: connect (from a chosen loopback source address),
//! authenticate with the `auth` frame, subscribe, and a subscriber's life:
//! read frames, ping, and on an unexpected close resume with `since` (the
//! offset and epoch of the last message seen), counting gaps and duplicates.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::Result;
use crate::frames::{self, Incoming};

/// A client connection.
pub type Ws = WebSocketStream<TcpStream>;

/// How long one connect, handshake, `auth` or `subscribe` may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at a first connection before giving up on it.
const CONNECT_ATTEMPTS: u32 = 3;

/// Where the chat socket of one node is.
pub struct Endpoint {
    /// `ws://host:port/api/chat/ws`
    pub url: String,
    /// The resolved address, to connect to from a chosen source address.
    pub addr: SocketAddr,
}

impl Endpoint {
    /// The chat socket of the server at `base` (`http://host:port`).
    pub async fn of(base: &str) -> Result<Self> {
        let url = reqwest::Url::parse(base)?;
        let host = url.host_str().ok_or("the server URL has no host")?;
        let port = url
            .port_or_known_default()
            .ok_or("the server URL has no port")?;
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| format!("{host} has no IPv4 address"))?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        Ok(Self {
            url: format!("{scheme}://{host}:{port}/api/chat/ws"),
            addr,
        })
    }
}

/// Opens a connection and authenticates it with the first frame.
/// `source` binds the local end (only for a loopback server).
pub async fn open(endpoint: &Endpoint, source: Option<Ipv4Addr>, token: &str) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source
        && endpoint.addr.ip().is_loopback()
    {
        socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
    }
    let stream = timeout(STEP_TIMEOUT, socket.connect(endpoint.addr))
        .await
        .map_err(|_| "TCP connect timed out")??;
    stream.set_nodelay(true)?;
    // Small buffers: thousands of connections live in this process too
    // (tungstenite reserves 128 KiB per connection by default).
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::client_async_with_config(endpoint.url.as_str(), stream, Some(config)),
    )
    .await
    .map_err(|_| "WebSocket handshake timed out")??;
    ws.send(Message::text(frames::auth(token))).await?;
    expect(&mut ws, "authenticated", None).await?;
    Ok(ws)
}

/// What `subscribed` said.
pub struct Subscribed {
    /// The room's newest offset when the subscription started.
    pub offset: Option<u64>,
    /// The room's epoch.
    pub epoch: Option<String>,
    /// Whether everything after `since` is (or will be) delivered.
    pub recovered: bool,
}

/// Subscribes to a room, resuming after `since` if given.
pub async fn subscribe(
    ws: &mut Ws,
    id: u64,
    room: &str,
    since: Option<(u64, &str)>,
) -> Result<Subscribed> {
    ws.send(Message::text(frames::subscribe(id, room, since)))
        .await?;
    let (offset, epoch, recovered) = expect(ws, "subscribed", Some(id)).await?;
    Ok(Subscribed {
        offset,
        epoch,
        recovered: recovered.unwrap_or(false),
    })
}

/// Reads frames until one of type `kind` (answering `id`, if given);
/// returns its offset, epoch and `recovered`. Other frames (presence…) are
/// skipped; an `error` or a close fails.
async fn expect(
    ws: &mut Ws,
    kind: &str,
    id: Option<u64>,
) -> Result<(Option<u64>, Option<String>, Option<bool>)> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = timeout(left, ws.next())
            .await
            .map_err(|_| format!("no `{kind}` frame within {STEP_TIMEOUT:?}"))?;
        match next {
            None => return Err(format!("connection ended before `{kind}`").into()),
            Some(Err(e)) => return Err(format!("before `{kind}`: {e}").into()),
            Some(Ok(Message::Close(close))) => {
                let why = close.map_or("no close frame".to_owned(), |c| {
                    format!("code {} {}", u16::from(c.code), c.reason)
                });
                return Err(format!("closed before `{kind}`: {why}").into());
            }
            Some(Ok(Message::Text(text))) => {
                let frame: Incoming = serde_json::from_str(text.as_str())
                    .map_err(|e| format!("unreadable frame {text}: {e}"))?;
                if frame.kind == "error" && (id.is_none() || frame.id == id) {
                    return Err(
                        format!("`error` instead of `{kind}`: {}", frame.describe_error()).into(),
                    );
                }
                if frame.kind == kind && (id.is_none() || frame.id == id) {
                    return Ok((
                        frame.offset,
                        frame.epoch.map(|e| e.into_owned()),
                        frame.recovered,
                    ));
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Counts over every subscriber of a run.
#[derive(Default)]
pub struct Counters {
    /// Connections open and subscribed now.
    pub open: AtomicU64,
    /// Connections that were established at least once.
    pub established: AtomicU64,
    /// Connections given up after `CONNECT_ATTEMPTS` failed attempts.
    pub failed: AtomicU64,
    /// Closes the harness did not ask for (a node stopping, 4008…).
    pub dropped: AtomicU64,
    /// Successful resumes after such a close.
    pub reconnects: AtomicU64,
    /// Messages skipped: an offset higher than the next one expected.
    pub gaps: AtomicU64,
    /// Messages seen twice (an offset lower than the next one expected).
    pub duplicates: AtomicU64,
    /// Messages a resume could not replay (`recovered: false`).
    pub unrecovered: AtomicU64,
    /// `error` frames received.
    pub errors: AtomicU64,
    /// The first failures and closes, for the log.
    pub samples: std::sync::Mutex<Vec<String>>,
}

impl Counters {
    /// Keeps the first few failure descriptions.
    pub fn note(&self, what: String) {
        if let Ok(mut samples) = self.samples.lock()
            && samples.len() < 8
        {
            samples.push(what);
        }
    }

    /// The failure descriptions kept, one line.
    pub fn samples_line(&self) -> String {
        self.samples
            .lock()
            .map(|s| s.join("; "))
            .unwrap_or_default()
    }
}

/// Everything one subscriber needs.
pub struct Subscriber {
    /// Which node.
    pub endpoint: Arc<Endpoint>,
    /// Local address to connect from.
    pub source: Option<Ipv4Addr>,
    /// Access token for `auth`.
    pub token: String,
    /// The room; None: authenticate only (to measure what a subscription costs).
    pub room: Option<String>,
    /// `ping` interval, if any.
    pub ping: Option<Duration>,
}

/// An open subscription: the socket, the next offset expected, and the
/// room's offset and epoch when it started.
type Connected = (Ws, Option<u64>, Option<(u64, String)>);

/// Called with a delivered `message`'s body and when it arrived.
pub type OnMessage = dyn Fn(&str, Instant) + Send + Sync;

impl Subscriber {
    /// Connects (taking a permit of `gate` for the handshake), then reads
    /// until `shutdown`; on an unexpected close, resumes with `since`.
    pub async fn run(
        self,
        gate: Arc<Semaphore>,
        counters: Arc<Counters>,
        on_message: Option<Arc<OnMessage>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut last: Option<(u64, String)> = None;
        let mut first = true;
        loop {
            let connected = {
                let Ok(_permit) = gate.acquire().await else {
                    return;
                };
                self.connect(
                    last.as_ref().map(|(o, e)| (*o, e.as_str())),
                    first,
                    &counters,
                )
                .await
            };
            let Some((mut ws, mut next_offset, start)) = connected else {
                if first {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                // A resume failed: wait a little and try again (the node may be restarting).
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = shutdown.changed() => return,
                }
            };
            if last.is_none() {
                last = start;
            }
            if first {
                counters.established.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            counters.open.fetch_add(1, Ordering::Relaxed);
            let ended_by_us = self
                .read(
                    &mut ws,
                    &mut next_offset,
                    &mut last,
                    &counters,
                    on_message.as_deref(),
                    &mut shutdown,
                )
                .await;
            counters.open.fetch_sub(1, Ordering::Relaxed);
            if ended_by_us {
                return;
            }
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One connection: open, subscribe; returns the next offset expected and
    /// the room's position when the subscription started (to resume from
    /// should the connection drop before any message).
    async fn connect(
        &self,
        since: Option<(u64, &str)>,
        first: bool,
        counters: &Counters,
    ) -> Option<Connected> {
        let attempts = if first { CONNECT_ATTEMPTS } else { 1 };
        for attempt in 1..=attempts {
            let outcome = async {
                let mut ws = open(&self.endpoint, self.source, &self.token).await?;
                let subscribed = match &self.room {
                    Some(room) => subscribe(&mut ws, 1, room, since).await?,
                    None => Subscribed {
                        offset: None,
                        epoch: None,
                        recovered: true,
                    },
                };
                Ok::<_, crate::Error>((ws, subscribed))
            }
            .await;
            match outcome {
                Ok((ws, subscribed)) => {
                    let next = match (since, subscribed.recovered) {
                        (Some((offset, _)), true) => Some(offset + 1),
                        (Some((offset, _)), false) => {
                            let missed = subscribed.offset.unwrap_or(offset).saturating_sub(offset);
                            counters.unrecovered.fetch_add(missed, Ordering::Relaxed);
                            subscribed.offset.map(|o| o + 1)
                        }
                        (None, _) => subscribed.offset.map(|o| o + 1),
                    };
                    let start = subscribed.offset.zip(subscribed.epoch);
                    return Some((ws, next, start));
                }
                Err(e) => {
                    counters.note(format!("connect (attempt {attempt}): {e}"));
                    if attempt < attempts {
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    }
                }
            }
        }
        None
    }

    /// Reads until the connection ends; true when it ended because the
    /// harness shut it down.
    async fn read(
        &self,
        ws: &mut Ws,
        next_offset: &mut Option<u64>,
        last: &mut Option<(u64, String)>,
        counters: &Counters,
        on_message: Option<&OnMessage>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let period = self.ping.unwrap_or(Duration::from_secs(3600));
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                frame = ws.next() => {
                    let now = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            self.on_text(text.as_str(), now, next_offset, last, counters, on_message);
                        }
                        Some(Ok(Message::Close(close))) => {
                            let why = close.map_or("no close frame".to_owned(), |c| {
                                format!("code {} {}", u16::from(c.code), c.reason)
                            });
                            counters.note(format!("closed by the server: {why}"));
                            return false;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            counters.note(format!("read: {e}"));
                            return false;
                        }
                        None => return false,
                    }
                }
                _ = ping.tick(), if self.ping.is_some() => {
                    if let Err(e) = ws.send(Message::text(frames::PING)).await {
                        counters.note(format!("ping: {e}"));
                        return false;
                    }
                }
                _ = shutdown.changed() => {
                    let _ = timeout(Duration::from_secs(5), ws.close(None)).await;
                    return true;
                }
            }
        }
    }

    fn on_text(
        &self,
        text: &str,
        now: Instant,
        next_offset: &mut Option<u64>,
        last: &mut Option<(u64, String)>,
        counters: &Counters,
        on_message: Option<&OnMessage>,
    ) {
        let Ok(frame) = serde_json::from_str::<Incoming>(text) else {
            counters.note(format!("unreadable frame: {text}"));
            return;
        };
        match frame.kind.as_ref() {
            "message" => {
                if let Some(offset) = frame.offset {
                    match *next_offset {
                        Some(next) if offset < next => {
                            counters.duplicates.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Some(next) if offset > next => {
                            counters.gaps.fetch_add(offset - next, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                    *next_offset = Some(offset + 1);
                    if let Some(epoch) = frame.epoch.as_deref() {
                        match last {
                            Some((o, e)) if e == epoch => *o = offset,
                            _ => *last = Some((offset, epoch.to_owned())),
                        }
                    }
                }
                if let (Some(on_message), Some(raw)) = (on_message, frame.message)
                    && let Ok(message) = serde_json::from_str::<frames::MessageBody>(raw.get())
                {
                    on_message(&message.body, now);
                }
            }
            "error" => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                counters.note(format!("error frame: {}", frame.describe_error()));
            }
            _ => {}
        }
    }
}
