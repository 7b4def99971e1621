//! Slow-client defence: how long a connection may take, and how many a node
//! holds.
//!
//! hyper alone leaves gaps (read in hyper 1.12 and hyper-util 0.1.21):
//! - HTTP/1's `header_read_timeout` restarts its timer when a kept-alive
//!   connection goes idle, so the idle time between requests and the time to
//!   send a request's head are one setting; and its expiry is an error
//!   inside hyper that nobody above sees (no log, no metric);
//! - hyper-util's auto builder first reads the connection's first bytes to
//!   tell HTTP/1 from HTTP/2, with no timeout: a client that connects and
//!   sends nothing is held for ever;
//! - HTTP/2 has neither a header nor an idle timeout (its keep-alive pings
//!   only find dead peers; a live idle one answers them).
//!
//! So the timing is done here, on the connection's byte stream (under hyper,
//! over TLS): [`Watched`] fails a read once its deadline passes, and hyper
//! then drops the connection. It learns where requests begin and end from
//! [`Tracked`], the connection's service, which counts requests until their
//! response body is sent (or dropped). [`ConnectionGuard`], the acceptor,
//! puts the two together, caps the open connections, and bounds the TLS
//! handshake.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response, StatusCode, Version};
use axum_server::accept::Accept;
use futures_util::task::AtomicWaker;
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::HttpConfig;
use crate::metrics::{ConnectionClose, Metrics};

/// One client can make thousands of connections a second close: each is
/// counted and logged at debug, and an `info` or `warn` line about them goes
/// out at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The limits every connection of one server shares.
struct Limits {
    header_timeout: Duration,
    idle_timeout: Duration,
    /// Free connection slots; `None`: no cap.
    slots: Option<Arc<Semaphore>>,
    metrics: Arc<Metrics>,
    /// When the next `info` or `warn` line may go out, in milliseconds after
    /// `started`.
    next_log_ms: AtomicU64,
    started: Instant,
}

impl Limits {
    /// Counts and logs a connection the server closes. Idle keep-alive
    /// closes are routine (browsers keep connections open), so only counted;
    /// slow heads and handshakes are an `info`, a full node a `warn`, each
    /// at most once per [`LOG_EVERY`].
    fn closed(&self, reason: ConnectionClose, peer: Option<SocketAddr>) {
        self.metrics.connection_closed(reason);
        let label = reason.as_str();
        tracing::debug!(?peer, reason = label, "connection closed by the server");
        if reason == ConnectionClose::IdleTimeout || !self.may_log() {
            return;
        }
        let every = LOG_EVERY.as_secs();
        if reason == ConnectionClose::OverCapacity {
            tracing::warn!(
                ?peer,
                "connection refused: this node holds http.max_connections already \
                 (count in basalt_http_connections_closed_total; logged at most once per {every} s)"
            );
        } else {
            tracing::info!(
                ?peer,
                reason = label,
                "slow connection closed (count in basalt_http_connections_closed_total; \
                 logged at most once per {every} s)"
            );
        }
    }

    /// Whether a line may go out now; if so, the next one waits.
    fn may_log(&self) -> bool {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let now = millis(self.started.elapsed());
        let next = self.next_log_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_log_ms
                .compare_exchange(
                    next,
                    now.saturating_add(millis(LOG_EVERY)),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

/// The acceptor: wraps another (plain TCP or TLS) and applies the limits.
///
/// Over the cap, a new connection is closed at once rather than left waiting
/// in the accept queue: the client learns immediately and can retry another
/// node, and a flood of connections costs no more than accepting and closing
/// them. Connections still in the TLS handshake count against the cap.
#[derive(Clone)]
pub struct ConnectionGuard<A> {
    inner: A,
    limits: Arc<Limits>,
}

impl<A> ConnectionGuard<A> {
    /// Applies `http`'s timeouts and connection cap to what `inner` accepts;
    /// closed connections are counted in `metrics`.
    pub fn new(inner: A, http: &HttpConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            limits: Arc::new(Limits {
                header_timeout: http.header_read_timeout(),
                idle_timeout: http.keepalive_idle_timeout(),
                slots: http.connection_cap().map(|n| Arc::new(Semaphore::new(n))),
                metrics,
                next_log_ms: AtomicU64::new(0),
                started: Instant::now(),
            }),
        }
    }
}

impl<A, S> Accept<TcpStream, S> for ConnectionGuard<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Watched<A::Stream>;
    type Service = Tracked<A::Service>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().ok();
        let limits = self.limits.clone();
        let permit = match &limits.slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    limits.closed(ConnectionClose::OverCapacity, peer);
                    return Box::pin(std::future::ready(Err(io::Error::other(
                        "over the connection cap",
                    ))));
                }
            },
        };
        let slot = Slot::new(permit, limits.metrics.http_connections_open.clone());
        let accepted = self.inner.accept(stream, service);
        Box::pin(async move {
            // The TLS acceptor's own handshake timeout ends as `TimedOut`.
            let (stream, service) = accepted.await.inspect_err(|e| {
                if e.kind() == io::ErrorKind::TimedOut {
                    limits.closed(ConnectionClose::TlsHandshakeTimeout, peer);
                }
            })?;
            let activity = Arc::new(Activity::default());
            let service = Tracked {
                inner: service,
                activity: activity.clone(),
            };
            Ok((Watched::new(stream, activity, limits, slot, peer), service))
        })
    }
}

/// A connection's place under the cap, and in the open-connections gauge.
struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    open: Gauge,
}

impl Slot {
    fn new(permit: Option<OwnedSemaphorePermit>, open: Gauge) -> Self {
        open.inc();
        Self {
            _permit: permit,
            open,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// What a connection's service tells its byte stream.
#[derive(Default)]
struct Activity {
    /// Requests whose response body is not yet sent or dropped.
    in_flight: AtomicUsize,
    /// Requests started so far: a whole request may begin and end between
    /// two reads.
    started: AtomicU64,
    /// HTTP/2: bytes between requests are frames (pings, settings), not the
    /// start of a request's head.
    http2: AtomicBool,
    /// Switched to another protocol (`101`): no more HTTP timing.
    upgraded: AtomicBool,
    /// The reading task, woken when the last request ends, so that the idle
    /// deadline starts even if no byte arrives.
    reader: AtomicWaker,
}

/// Where a connection is, and so which deadline applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first request: the header timeout, from the start.
    First,
    /// Requests in flight: no deadline here (`http.request_timeout_secs`
    /// bounds the handler).
    Busy,
    /// Between requests: the idle timeout.
    Idle,
    /// HTTP/1, the next request's first bytes are in: the header timeout.
    Head,
    /// Upgraded to another protocol: none.
    Upgraded,
}

/// A connection's byte stream, which fails its reads once the deadline of
/// its phase has passed. hyper always has a read pending while it waits
/// for a request, so the deadline is polled exactly when it matters.
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    limits: Arc<Limits>,
    phase: Phase,
    /// `activity.started` when the phase was last decided.
    seen_started: u64,
    deadline: Pin<Box<Sleep>>,
    expired: bool,
    peer: Option<SocketAddr>,
    _slot: Slot,
}

impl<S> Watched<S> {
    fn new(
        inner: S,
        activity: Arc<Activity>,
        limits: Arc<Limits>,
        slot: Slot,
        peer: Option<SocketAddr>,
    ) -> Self {
        let deadline = Box::pin(tokio::time::sleep(limits.header_timeout));
        Self {
            inner,
            activity,
            limits,
            phase: Phase::First,
            seen_started: 0,
            deadline,
            expired: false,
            peer,
            _slot: slot,
        }
    }

    fn enter(&mut self, phase: Phase, timeout: Duration) {
        self.phase = phase;
        self.deadline.as_mut().reset(Instant::now() + timeout);
    }

    /// Catches up with what the service saw since the last read.
    fn refresh(&mut self) {
        if self.phase == Phase::Upgraded {
            return;
        }
        if self.activity.upgraded.load(Ordering::SeqCst) {
            self.phase = Phase::Upgraded;
            return;
        }
        let started = self.activity.started.load(Ordering::SeqCst);
        if self.activity.in_flight.load(Ordering::SeqCst) > 0 {
            self.phase = Phase::Busy;
            self.seen_started = started;
        } else if self.phase == Phase::Busy || started != self.seen_started {
            self.seen_started = started;
            self.enter(Phase::Idle, self.limits.idle_timeout);
        }
    }

    /// Bytes arrived: on an idle HTTP/1 connection, a request's head begins.
    fn received(&mut self) {
        if self.phase == Phase::Idle && !self.activity.http2.load(Ordering::SeqCst) {
            self.enter(Phase::Head, self.limits.header_timeout);
        }
    }

    /// Why the connection would be closed at the deadline, if it would.
    fn timeout_reason(&self) -> Option<ConnectionClose> {
        match self.phase {
            Phase::First | Phase::Head => Some(ConnectionClose::HeaderTimeout),
            Phase::Idle => Some(ConnectionClose::IdleTimeout),
            Phase::Busy | Phase::Upgraded => None,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection too slow")
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Err(timed_out()));
        }
        this.refresh();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) if buf.filled().len() > before => this.received(),
            Poll::Pending => {
                this.activity.reader.register(cx.waker());
                if let Some(reason) = this.timeout_reason()
                    && this.deadline.as_mut().poll(cx).is_ready()
                {
                    this.expired = true;
                    this.limits.closed(reason, this.peer);
                    return Poll::Ready(Err(timed_out()));
                }
            }
            Poll::Ready(_) => {}
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A connection's service: counts each request from its dispatch (its head
/// complete) until its response body is sent or dropped.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B, RB> tower::Service<Request<B>> for Tracked<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    RB: HttpBody + Unpin,
{
    type Response = Response<TrackedBody<RB>>;
    type Error = S::Error;
    // Boxed: the response must be mapped, and the one allocation per request
    // is small next to the router's own.
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.version() == Version::HTTP_2 {
            self.activity.http2.store(true, Ordering::SeqCst);
        }
        let guard = RequestGuard::new(self.activity.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                guard.activity.upgraded.store(true, Ordering::SeqCst);
            }
            Ok(response.map(|inner| TrackedBody {
                inner,
                _guard: guard,
            }))
        })
    }
}

/// One request in flight on its connection.
struct RequestGuard {
    activity: Arc<Activity>,
}

impl RequestGuard {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.started.fetch_add(1, Ordering::SeqCst);
        Self { activity }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.activity.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.activity.reader.wake();
        }
    }
}

/// A response body that keeps its request counted until it is dropped.
pub struct TrackedBody<B> {
    inner: B,
    _guard: RequestGuard,
}

impl<B: HttpBody + Unpin> HttpBody for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closes_are_all_counted_but_logged_at_most_once_per_window() {
        let metrics = Arc::new(Metrics::new("sqlite"));
        let guard = ConnectionGuard::new((), &HttpConfig::default(), metrics.clone());
        let limits = &guard.limits;
        assert!(limits.may_log(), "the first close is logged");
        assert!(!limits.may_log(), "the next ones wait for the window");
        for _ in 0..3 {
            limits.closed(ConnectionClose::HeaderTimeout, None);
        }
        limits.closed(ConnectionClose::OverCapacity, None);
        let counted = |reason| {
            metrics
                .http_connections_closed
                .get_or_create(&crate::metrics::ConnectionCloseLabels { reason })
                .get()
        };
        assert_eq!(counted(ConnectionClose::HeaderTimeout), 3);
        assert_eq!(counted(ConnectionClose::OverCapacity), 1);
    }
}
