//! One delivery attempt: the [`DELIVER_JOB`](super::DELIVER_JOB) handler,
//! its HTTP client (timeouts, no redirects, only public addresses unless
//! allowed) and the address rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_platform::db::Db;
use basalt_platform::jobs::JobError;
use chrono::Utc;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::store::{self, Outcome};
use super::{DeliveryStatus, SIGNATURE_HEADER};
use crate::config::WebhooksConfig;

/// The job's payload: which delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverJob {
    /// The delivery to attempt.
    pub delivery_id: Uuid,
}

/// Whether `ip` is a public unicast address, one a merchant's server may
/// have. Loopback, private (RFC 1918), shared (100.64/10), link-local,
/// unspecified, broadcast, documentation, benchmarking, multicast, IPv6
/// unique-local and site-local addresses are not; IPv4-mapped IPv6
/// addresses are judged as their IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x0064 && ip.segments()[1] == 0xff9b)
}

/// Checks a URL before it is stored or called: http(s), a host, and, unless
/// private addresses are allowed, no literal non-public address and not
/// `localhost`. Names are checked again, resolved, at every attempt.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    if url.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| "must be an absolute URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let refused = || {
        Err(
            "must be on a public address (private, loopback and link-local addresses are refused)"
                .to_owned(),
        )
    };
    match parsed.host() {
        None => return Err("must name a host".into()),
        Some(_) if allow_private => {}
        Some(url::Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => return refused(),
        Some(url::Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => return refused(),
        Some(url::Host::Domain(name)) if is_localhost(name) => return refused(),
        Some(_) => {}
    }
    Ok(parsed)
}

/// `localhost` and its subdomains (RFC 6761), a trailing dot or not.
fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Resolves names and keeps only the addresses that may be called: the
/// connection is made to what passed, so a name cannot be re-pointed
/// between the check and the connect.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Sends deliveries: the client and the rules. Holds no job queue (the
/// queue holds it).
#[derive(Clone)]
pub struct Deliverer {
    db: Db,
    client: reqwest::Client,
    config: Arc<WebhooksConfig>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer over `db` with the `[shop.webhooks]` settings.
    pub fn new(db: Db, config: WebhooksConfig) -> anyhow::Result<Self> {
        basalt_platform::server::install_crypto_provider();
        let timeout = Duration::from_secs(config.timeout_secs);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: config.allow_private_addresses,
            }))
            .user_agent(concat!("Basalt-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            db,
            client,
            config: Arc::new(config),
        })
    }

    /// Attempts the delivery `delivery_id` once and logs the attempt. An
    /// error asks the job queue to retry (with back-off), or, on the last
    /// attempt, to give up.
    pub async fn attempt(&self, delivery_id: Uuid) -> Result<DeliveryStatus, JobError> {
        let to_send = store::to_send(&self.db, delivery_id)
            .await
            .map_err(|e| JobError::Retry(format!("{e:#}")))?
            .ok_or_else(|| JobError::Permanent(format!("no delivery {delivery_id}")))?;
        if !to_send.enabled {
            return Err(JobError::Permanent("the endpoint is disabled".into()));
        }
        let started_at = Utc::now();
        let clock = Instant::now();
        let result = self.send(delivery_id, &to_send).await;
        let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (response_status, error) = match &result {
            Ok(status) if (200..300).contains(status) => (Some(i32::from(*status)), None),
            Ok(status) => (
                Some(i32::from(*status)),
                Some(format!("the endpoint answered {status}")),
            ),
            Err(error) => (None, Some(error.clone())),
        };
        let outcome = Outcome {
            started_at,
            duration_ms,
            response_status,
            error: error.as_deref(),
            succeeded: error.is_none(),
        };
        let max_attempts = i32::try_from(self.config.max_attempts).unwrap_or(i32::MAX);
        let status = store::record_attempt(&self.db, delivery_id, &outcome, max_attempts)
            .await
            .map_err(|e| JobError::Retry(format!("{e:#}")))?;
        match (status, error) {
            (DeliveryStatus::Succeeded, _) | (_, None) => Ok(status),
            (DeliveryStatus::Failed, Some(error)) => Err(JobError::Permanent(error)),
            (_, Some(error)) => Err(JobError::Retry(error)),
        }
    }

    /// POSTs the body, signed now; the receiver's status, or why none.
    async fn send(&self, delivery_id: Uuid, to_send: &store::ToSend) -> Result<u16, String> {
        let url = check_url(&to_send.url, self.config.allow_private_addresses)?;
        let timestamp = Utc::now().timestamp();
        let signature = crate::signature::sign(
            to_send.secret.as_bytes(),
            timestamp,
            to_send.body.as_bytes(),
        );
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("basalt-event-type", &to_send.event_type)
            .header("basalt-delivery-id", delivery_id.to_string())
            .body(to_send.body.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }
}

/// A transport error in a sentence, its causes included (the resolver's
/// refusal among them).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[tokio::test]
    async fn the_resolver_keeps_only_public_addresses() {
        let name = |host: &str| host.parse::<Name>().expect("name");
        let strict = GuardedResolver {
            allow_private: false,
        };
        let refused = strict.resolve(name("localhost")).await;
        assert!(
            refused
                .err()
                .is_some_and(|e| e.to_string().contains("no public address"))
        );
        let open = GuardedResolver {
            allow_private: true,
        };
        let found: Vec<SocketAddr> = open
            .resolve(name("localhost"))
            .await
            .expect("resolves")
            .collect();
        assert!(found.iter().all(|a| a.ip().is_loopback()) && !found.is_empty());
    }

    #[test]
    fn urls_are_checked_before_they_are_stored() {
        assert!(check_url("https://hooks.example.com/basalt", false).is_ok());
        for bad in [
            "ftp://example.com/",
            "not a url",
            "http://127.0.0.1:9000/",
            "http://[::1]/",
            "http://localhost/",
            "http://LocalHost./",
            "http://api.localhost/",
            "http://169.254.169.254/latest/meta-data",
            "https://user:pw@example.com/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/", true).is_ok());
    }
}
