//! Slow-client defence: connections that idle, trickle their request or
//! come one too many are closed within their bound, counted in the metrics,
//! while a normal client keeps being served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use basalt_testkit::TestApp;
use reqwest::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Slack for a noisy 2-core machine: a close may come this much late.
const MARGIN: Duration = Duration::from_secs(3);
/// Timers never fire early; this only absorbs the test's own clock reading.
const EARLY: Duration = Duration::from_millis(100);
/// An idle timeout starts when the server has sent its answer, which the
/// client reads a little later (more on a busy machine).
const READ_LATER: Duration = Duration::from_millis(500);

async fn spawn(header_secs: u64, idle_secs: u64, max_connections: usize, tls: bool) -> TestApp {
    let builder = TestApp::builder().configure(move |c| {
        c.http.header_read_timeout_secs = header_secs;
        c.http.keepalive_idle_timeout_secs = idle_secs;
        c.http.max_connections = max_connections;
    });
    if tls { builder.tls() } else { builder }.spawn().await
}

/// A normal client asking for `/healthz` every 100 ms while a test runs.
struct Healthy {
    ok: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<String>>,
}

impl Healthy {
    fn start(app: &TestApp) -> Self {
        let (client, url) = (app.client.clone(), app.url("/healthz"));
        let ok = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ok_, stop_) = (ok.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop_.load(Ordering::SeqCst) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == StatusCode::OK => {
                        ok_.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failures.push(format!("status {}", r.status())),
                    Err(e) => failures.push(format!("{e:?}")),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            failures
        });
        Self { ok, stop, task }
    }

    /// Stops it; every request it made must have been a 200.
    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        let failures = self.task.await.expect("joins");
        let ok = self.ok.load(Ordering::SeqCst);
        assert!(failures.is_empty(), "normal requests failed: {failures:?}");
        assert!(ok >= 5, "only {ok} normal requests were served");
    }
}

/// Reads (and discards) until the server closes `stream`; how long that
/// took from `since`. Panics if it is still open after `bound`.
async fn closed_after(
    stream: &mut (impl AsyncRead + Unpin),
    since: Instant,
    bound: Duration,
) -> Duration {
    let mut buf = [0u8; 4096];
    let until = since + bound;
    loop {
        match tokio::time::timeout_at(until.into(), stream.read(&mut buf)).await {
            Err(_) => panic!("still open after {bound:?}"),
            Ok(Ok(0) | Err(_)) => return since.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

/// A slow loris: one more header line every 300 ms, always sending, never
/// done, until the server closes the connection; how long that took from
/// `since`.
async fn trickle_until_closed(stream: &mut TcpStream, since: Instant, bound: Duration) -> Duration {
    let (mut read, mut write) = stream.split();
    let writer = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let line = format!("x-slow-{i}: a\r\n");
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        took = closed_after(&mut read, since, bound) => took,
        () = writer => since.elapsed(),
    }
}

fn assert_between(took: Duration, low: Duration, high: Duration, what: &str) {
    assert!(
        took >= low && took <= high,
        "{what}: closed after {took:?}, expected {low:?}..{high:?}"
    );
}

/// Sends `GET /healthz` on a raw connection and reads its whole answer.
async fn get_healthz(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: basalt\r\n\r\n")
        .await
        .expect("request written");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(n > 0, "closed instead of answering");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().expect("length"))
                })
                .expect("content-length");
            if body.len() >= length {
                return;
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connects")
}

/// `basalt_http_connections_closed_total{reason}` and the open gauge.
async fn closes(app: &TestApp, reason: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(text.contains("basalt_http_connections_open "), "{text}");
    let prefix = format!("basalt_http_connections_closed_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.parse().expect("number"))
}

#[tokio::test]
async fn idle_half_sent_and_trickling_requests_are_closed_at_the_header_timeout() {
    let app = spawn(1, 60, 0, false).await;
    let header = Duration::from_secs(1);
    let healthy = Healthy::start(&app);

    let silent = async {
        let started = Instant::now();
        let mut stream = connect(app.addr).await;
        closed_after(&mut stream, started, header + MARGIN).await
    };
    let half_sent = async {
        let started = Instant::now();
        let mut stream = connect(app.addr).await;
        stream.write_all(b"GET /healthz HT").await.expect("written");
        closed_after(&mut stream, started, header + MARGIN).await
    };
    let trickling = async {
        let started = Instant::now();
        let mut stream = connect(app.addr).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("written");
        trickle_until_closed(&mut stream, started, header + MARGIN).await
    };
    let (silent, half_sent, trickling) = tokio::join!(silent, half_sent, trickling);
    for (took, what) in [
        (silent, "silent"),
        (half_sent, "half-sent request line"),
        (trickling, "slow loris"),
    ] {
        assert_between(took, header - EARLY, header + MARGIN, what);
    }

    healthy.finish().await;
    assert_eq!(closes(&app, "header_timeout").await, 3.0);
    assert_eq!(closes(&app, "idle_timeout").await, 0.0);
}

#[tokio::test]
async fn kept_alive_connections_close_when_idle_and_when_the_next_head_trickles() {
    let (header, idle) = (Duration::from_secs(1), Duration::from_secs(4));
    let app = spawn(1, 4, 0, false).await;
    let healthy = Healthy::start(&app);

    let idle_after_a_request = async {
        let mut stream = connect(app.addr).await;
        get_healthz(&mut stream).await;
        let served = Instant::now();
        closed_after(&mut stream, served, idle + MARGIN).await
    };
    // The next request's head starts at once, then trickles: its header
    // timeout ends the connection well before the idle timeout would.
    let trickling_next_request = async {
        let mut stream = connect(app.addr).await;
        get_healthz(&mut stream).await;
        let started = Instant::now();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("written");
        trickle_until_closed(&mut stream, started, idle + MARGIN).await
    };
    let (idle_took, trickle_took) = tokio::join!(idle_after_a_request, trickling_next_request);
    assert_between(
        idle_took,
        idle - READ_LATER,
        idle + MARGIN,
        "idle kept-alive",
    );
    assert_between(
        trickle_took,
        header - EARLY,
        idle - Duration::from_millis(500),
        "trickling second request",
    );

    healthy.finish().await;
    assert_eq!(closes(&app, "idle_timeout").await, 1.0);
    assert_eq!(closes(&app, "header_timeout").await, 1.0);
}

#[tokio::test]
async fn idle_http2_connections_are_closed_too() {
    let idle = Duration::from_secs(2);
    let app = spawn(1, 2, 0, false).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let response = h2.get(app.url("/healthz")).send().await.expect("answered");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let served = Instant::now();
    while closes(&app, "idle_timeout").await < 1.0 {
        assert!(
            served.elapsed() < idle + MARGIN,
            "the HTTP/2 connection is still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Later than the header timeout (1 s): it is the idle timeout's doing.
    assert_between(
        served.elapsed(),
        idle - READ_LATER,
        idle + MARGIN,
        "idle HTTP/2",
    );
    assert_eq!(closes(&app, "header_timeout").await, 0.0);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_while_the_others_are_served() {
    // The normal client's one connection plus three held ones fill the cap.
    let app = spawn(30, 60, 4, false).await;
    let healthy = Healthy::start(&app);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(app.addr).await;
        get_healthz(&mut stream).await;
        held.push(stream);
    }

    for _ in 0..3 {
        let started = Instant::now();
        let mut extra = connect(app.addr).await;
        // Written before the close arrives, or refused: either way, no answer.
        let _ = extra
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: basalt\r\n\r\n")
            .await;
        let took = closed_after(&mut extra, started, MARGIN).await;
        assert!(took < Duration::from_secs(2), "closed only after {took:?}");
    }
    for stream in &mut held {
        get_healthz(stream).await;
    }
    // At the cap, the normal client goes on being served on its connection.
    tokio::time::sleep(Duration::from_secs(1)).await;
    healthy.finish().await;
    assert_eq!(closes(&app, "over_capacity").await, 3.0);

    // A closed connection frees its slot.
    held.pop();
    let freed = Instant::now();
    loop {
        let mut stream = connect(app.addr).await;
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: basalt\r\n\r\n")
            .await;
        let mut buf = [0u8; 12];
        if stream.read_exact(&mut buf).await.is_ok() {
            assert_eq!(&buf, b"HTTP/1.1 200");
            break;
        }
        assert!(freed.elapsed() < MARGIN, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_tls_handshake_that_never_starts_is_closed_at_the_header_timeout() {
    let header = Duration::from_secs(1);
    let app = spawn(1, 60, 0, true).await;
    let healthy = Healthy::start(&app);
    let started = Instant::now();
    let mut stream = connect(app.addr).await;
    let took = closed_after(&mut stream, started, header + MARGIN).await;
    assert_between(took, header - EARLY, header + MARGIN, "silent TLS client");
    healthy.finish().await;
    assert_eq!(closes(&app, "tls_handshake_timeout").await, 1.0);
}
