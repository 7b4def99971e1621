//! Redis for tests.
//!
//! - With `TEST_REDIS_URL` set, every [`crate::TestApp`] uses the Redis
//!   adapters (cache, rate limits) on that server, each app under its own key
//!   prefix so that parallel tests cannot see each other's keys.
//! - [`RedisServer`] starts a private `redis-server` (Debian's package,
//!   installed by `bash scripts/test.sh`) that a test may stop and restart:
//!   outages cannot be rehearsed on the shared server.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the Redis server the suite's apps use.
pub const REDIS_ENV: &str = "TEST_REDIS_URL";

/// The shared Redis of this test run, if any.
pub fn shared_redis_url() -> Option<String> {
    std::env::var(REDIS_ENV).ok().filter(|s| !s.is_empty())
}

/// A private `redis-server` on a free loopback port below the ephemeral range
/// (see [`crate::ports`]), with persistence off; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits until it accepts connections (on another
    /// port if a parallel test took the first one in the meantime).
    pub fn start() -> Self {
        for _ in 0..5 {
            let mut server = Self {
                port: crate::ports::restartable_port(),
                child: None,
            };
            if server.try_start() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 ports");
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
        assert!(
            self.try_start(),
            "redis-server did not start again on port {}",
            self.port
        );
    }

    /// Starts the server; false when it exited instead of listening (its
    /// port was taken).
    fn try_start(&mut self) -> bool {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (installed by `bash scripts/test.sh`)");
        let child = self.child.insert(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Exited first: whoever answers on the port is not our server.
            if !matches!(child.try_wait(), Ok(None)) {
                self.child = None;
                return false;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
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
