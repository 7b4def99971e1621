//! `basalt healthcheck`: the liveness probe as a command, for container
//! runtimes whose health checks run a program (Docker's `HEALTHCHECK`), so
//! that the image needs no shell or curl.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Config;

/// A probe gets this long, connection included: a node slower than that to
/// answer `/healthz` (no I/O behind it) is not healthy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks this node's own listener for `GET /healthz` and succeeds on 200.
/// The node is reached on loopback when it listens on every interface, over
/// HTTPS when it serves TLS; its certificate names the public host, not
/// loopback, so it is not verified: the probe checks liveness, not identity,
/// and never leaves the machine.
pub async fn probe_health(config: &Config) -> anyhow::Result<()> {
    super::install_crypto_provider();
    let target = local_address(config.listen);
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{target}/healthz");
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .danger_accept_invalid_certs(config.tls.is_some())
        .no_proxy()
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{url}: HTTP {status}");
    Ok(())
}

/// Where a local client reaches a listener: an unspecified address
/// (`0.0.0.0`, `::`) means loopback of the same family.
fn local_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_probed_on_loopback() {
        let at = |s: &str| local_address(s.parse().expect("address")).to_string();
        assert_eq!(at("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(at("[::]:8080"), "[::1]:8080");
        assert_eq!(at("10.1.2.3:9000"), "10.1.2.3:9000");
    }
}
