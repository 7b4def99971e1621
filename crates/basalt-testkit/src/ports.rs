//! Loopback ports for servers that a test starts late or restarts.
//!
//! A port from `bind(127.0.0.1:0)` lies in Linux's ephemeral range
//! (32768-60999 by default). Once its listener is gone, the local end of any
//! outgoing connection on the machine (another test's database pool, say) may
//! be given that port, and a server started on it later fails to bind. Ports
//! for a server that is stopped and started again, or that clients are told
//! about before it runs, are therefore taken below that range.

use std::net::TcpListener;

/// The ports handed out: below the ephemeral range, above the fixed ports of
/// `scripts/` (all under 29,000).
const FIRST: u16 = 29_000;
const COUNT: u16 = 3_700;

/// A port below the ephemeral range that was free a moment ago, chosen at
/// random so that parallel test processes rarely pick the same one (a server
/// that then fails to bind says so: see [`crate::redis::RedisServer`]).
pub fn restartable_port() -> u16 {
    for _ in 0..200 {
        let offset = (uuid::Uuid::new_v4().as_u128() % u128::from(COUNT)) as u16;
        let port = FIRST + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}
