//! Redis for tests.
//!
//! - With `TEST_REDIS_URL` set, every [`crate::TestApp`] uses the Redis
//!   adapters (cache, rate limits) on that server, each app under its own key
//!   prefix so that parallel tests cannot see each other's keys.
//! - [`RedisServer`] starts a private `redis-server` (Debian's package,
//!   installed by `bash scripts/test.sh`) that a test may stop and restart:
//!   outages cannot be rehearsed on the shared server.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the Redis server the suite's apps use.
pub const REDIS_ENV: &str = "TEST_REDIS_URL";

/// The shared Redis of this test run, if any.
pub fn shared_redis_url() -> Option<String> {
    std::env::var(REDIS_ENV).ok().filter(|s| !s.is_empty())
}

/// A private `redis-server` on a free loopback port, with persistence off;
/// killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self { port, child: None };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone: persistence is off).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (installed by `bash scripts/test.sh`)");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
