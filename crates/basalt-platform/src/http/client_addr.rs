//! Who the client is, behind reverse proxies: its IP address and whether it
//! reached us over HTTPS.
//!
//! One middleware ([`client_addr`]) works this out once per request and puts
//! a [`ClientAddr`] into the request's extensions; the request log, rate
//! limits, lockout and the audit log all read it from there.
//!
//! The forwarding headers are believed only when the TCP peer is one of the
//! configured trusted proxies (`trusted_proxies`, empty by default: then the
//! headers are ignored and the peer is the client). From a trusted peer:
//!
//! - `X-Forwarded-For` is walked from the right: trusted hops are skipped,
//!   and the first untrusted address is the client. Whatever a client puts
//!   at the left of the list is never reached while a trusted proxy appended
//!   the address it really saw, so prepending does not spoof. Should every
//!   hop be trusted, the left-most is the client; should the walk meet an
//!   entry that is no IP address, the nearest valid hop stands.
//! - `X-Forwarded-Proto` gives the scheme: the entry at the client's position
//!   when the proxies appended one per hop, otherwise the right-most (the
//!   one the nearest proxy set).
//! - The standard `Forwarded` header (RFC 7239) is read the same way (`for=`
//!   and `proto=` of each element), but only when the request carries no
//!   `X-Forwarded-For`: most proxies (nginx, HAProxy's `forwardfor`, Traefik,
//!   Caddy, cloud load balancers) maintain `X-Forwarded-For` and pass other
//!   headers through, so preferring it keeps a client-written `Forwarded`
//!   from being believed. A proxy that writes only `Forwarded` must remove a
//!   client's `X-Forwarded-For`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Serialize, Serializer};

use crate::error::ApiError;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// The client of a request, as far as the trusted proxies let us see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's IP address.
    pub ip: IpAddr,
    /// Whether the client used HTTPS (to Basalt's own TLS, or to the proxy).
    pub https: bool,
}

impl ClientAddr {
    /// The client address the middleware stored, if it ran (it does for every
    /// request the server accepts).
    pub fn of(extensions: &Extensions) -> Option<Self> {
        extensions.get::<Self>().copied()
    }
}

/// A handler's `ClientAddr` argument; a 500 only if the middleware did not run.
impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Self::of(&parts.extensions).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("the client address middleware did not run"))
        })
    }
}

/// `Option<ClientAddr>`: `None` outside the server (a router driven directly).
impl<S: Send + Sync> OptionalFromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::of(&parts.extensions))
    }
}

/// An IP address or a CIDR range (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` is inside the range (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask32(u32::from(ip), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask128(u128::from(ip), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(bits: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask128(bits: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(prefix)))
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or a range like 10.0.0.0/8"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        let network = match addr {
            IpAddr::V4(a) => IpAddr::from(mask32(u32::from(a), prefix).to_be_bytes()),
            IpAddr::V6(a) => IpAddr::from(mask128(u128::from(a), prefix).to_be_bytes()),
        };
        if network != addr {
            return Err(format!(
                "`{s}` has bits set beyond its prefix; did you mean {network}/{prefix}?"
            ));
        }
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose forwarding headers are believed. Empty (the default):
/// none, the TCP peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpRange>);

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

/// One step of a forwarding chain: the address a proxy saw (`None` when it
/// is not an IP address: `unknown`, obfuscated or garbled) and the scheme it
/// was reached by, when recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    ip: Option<IpAddr>,
    https: Option<bool>,
}

impl TrustedProxies {
    /// Parses IP addresses and CIDR ranges; the error names the bad entry.
    pub fn parse<I, S>(entries: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        entries
            .into_iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// No proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The configured ranges.
    pub fn ranges(&self) -> &[IpRange] {
        &self.0
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|r| r.contains(ip))
    }

    /// The client of a request that arrived from `peer` (over TLS when
    /// `connection_https`) with `headers`.
    pub fn resolve(&self, peer: IpAddr, connection_https: bool, headers: &HeaderMap) -> ClientAddr {
        let peer = peer.to_canonical();
        let direct = ClientAddr {
            ip: peer,
            https: connection_https,
        };
        if !self.contains(peer) {
            return direct;
        }
        let (hops, fallback_https) = if headers.contains_key(X_FORWARDED_FOR) {
            x_forwarded(headers)
        } else if headers.contains_key(FORWARDED) {
            (forwarded(headers), None)
        } else {
            let proto = header_items(headers, &X_FORWARDED_PROTO)
                .last()
                .and_then(|p| p.as_deref().and_then(parse_proto));
            return ClientAddr {
                ip: peer,
                https: proto.unwrap_or(connection_https),
            };
        };
        let chosen = self.walk(&hops);
        ClientAddr {
            ip: chosen.map_or(peer, |i| hops[i].ip.unwrap_or(peer)),
            https: chosen
                .and_then(|i| hops[i].https)
                .or(fallback_https)
                .unwrap_or(connection_https),
        }
    }

    /// The index of the client among `hops` (left to right, as the headers
    /// list them): from the right, skip trusted addresses and stop at the
    /// first untrusted one. `None` when the nearest entry is no address.
    fn walk(&self, hops: &[Hop]) -> Option<usize> {
        let mut chosen = None;
        for (i, hop) in hops.iter().enumerate().rev() {
            let Some(ip) = hop.ip else { break };
            chosen = Some(i);
            if !self.contains(ip) {
                break;
            }
        }
        chosen
    }
}

/// The comma-separated items of every `name` header, in order; a header
/// line that is not visible ASCII counts as one unreadable item.
fn header_items(headers: &HeaderMap, name: &HeaderName) -> Vec<Option<String>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => split_unquoted(text, ',')
                .into_iter()
                .map(|s| Some(s.trim().to_owned()))
                .collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// `X-Forwarded-For` as hops, each with its `X-Forwarded-Proto` entry when
/// the proxies appended one per hop; otherwise the right-most proto is the
/// fallback for all.
fn x_forwarded(headers: &HeaderMap) -> (Vec<Hop>, Option<bool>) {
    let addresses = header_items(headers, &X_FORWARDED_FOR);
    let protos: Vec<Option<bool>> = header_items(headers, &X_FORWARDED_PROTO)
        .iter()
        .map(|p| p.as_deref().and_then(parse_proto))
        .collect();
    let aligned = protos.len() == addresses.len();
    let hops = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| Hop {
            ip: a.as_deref().and_then(parse_node),
            https: if aligned { protos[i] } else { None },
        })
        .collect();
    let fallback = if aligned {
        None
    } else {
        protos.last().copied().flatten()
    };
    (hops, fallback)
}

/// `Forwarded` (RFC 7239) as hops: `for=` and `proto=` of each element.
fn forwarded(headers: &HeaderMap) -> Vec<Hop> {
    header_items(headers, &FORWARDED)
        .into_iter()
        .map(|element| {
            let mut hop = Hop {
                ip: None,
                https: None,
            };
            for pair in element
                .as_deref()
                .map(|e| split_unquoted(e, ';'))
                .unwrap_or_default()
            {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = unquote(value.trim());
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.ip = parse_node(&value),
                    "proto" => hop.https = parse_proto(&value),
                    _ => {}
                }
            }
            hop
        })
        .collect()
}

/// Splits on `sep` outside double quotes.
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A token or an RFC 7230 quoted string, unquoted.
fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    out.extend(chars.next());
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => value.to_owned(),
    }
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, with or
/// without a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`, `[2001:db8::1]`).
/// `unknown` and obfuscated identifiers (`_hidden`) are not addresses.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
}

fn parse_proto(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "https" => Some(true),
        "http" => Some(false),
        _ => None,
    }
}

/// What the [`client_addr`] middleware needs.
#[derive(Debug, Clone, Default)]
pub struct ClientAddrSettings {
    /// Whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Whether Basalt itself serves TLS (the scheme when no proxy says otherwise).
    pub tls: bool,
}

/// Middleware: stores the request's [`ClientAddr`] in its extensions.
/// Without a TCP peer (a router driven directly, in tests) it stores nothing.
pub async fn client_addr(
    State(settings): State<Arc<ClientAddrSettings>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    {
        let addr = settings
            .trusted_proxies
            .resolve(peer.ip(), settings.tls, request.headers());
        request.extensions_mut().insert(addr);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).expect("valid")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        h
    }

    fn client(p: &TrustedProxies, peer: &str, pairs: &[(&str, &str)]) -> ClientAddr {
        p.resolve(ip(peer), false, &headers(pairs))
    }

    #[test]
    fn parses_addresses_and_ranges() {
        let p = proxies(&[
            "127.0.0.1/32",
            "10.0.0.0/8",
            "::1",
            "fd00::/8",
            " 192.168.1.7 ",
        ]);
        let shown: Vec<String> = p.ranges().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "127.0.0.1/32",
                "10.0.0.0/8",
                "::1/128",
                "fd00::/8",
                "192.168.1.7/32"
            ]
        );
        assert!(p.contains(ip("10.255.0.3")));
        assert!(!p.contains(ip("11.0.0.1")));
        assert!(p.contains(ip("fd12:3456::1")));
        assert!(!p.contains(ip("fe80::1")));
        assert!(p.contains(ip("::1")));
        assert!(p.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped IPv6");
        assert!(!p.contains(ip("127.0.0.2")));
        assert!(proxies(&["0.0.0.0/0"]).contains(ip("203.0.113.9")));
        assert!(!proxies(&["0.0.0.0/0"]).contains(ip("2001:db8::1")));
        assert!(proxies(&["::/0"]).contains(ip("2001:db8::1")));
        assert!(
            TrustedProxies::parse(Vec::<String>::new())
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        for bad in [
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.1/8",
            "1.2.3",
            "",
        ] {
            let err = TrustedProxies::parse(["127.0.0.1", bad]).expect_err(bad);
            assert!(err.contains(bad.trim()), "{bad}: {err}");
        }
        assert!(
            TrustedProxies::parse(["10.0.0.1/8"])
                .expect_err("host bits")
                .contains("10.0.0.0/8")
        );
    }

    #[test]
    fn without_trusted_proxies_headers_are_ignored() {
        let none = TrustedProxies::default();
        let c = client(
            &none,
            "127.0.0.1",
            &[
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-proto", "https"),
                ("forwarded", "for=198.51.100.1;proto=https"),
            ],
        );
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("127.0.0.1"),
                https: false
            }
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let p = proxies(&["10.0.0.0/8"]);
        let c = client(
            &p,
            "198.51.100.20",
            &[
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("198.51.100.20"),
                https: false
            }
        );
        let tls = p.resolve(ip("198.51.100.20"), true, &HeaderMap::new());
        assert!(tls.https, "the connection's own TLS");
    }

    #[test]
    fn x_forwarded_for_is_walked_from_the_right_past_trusted_hops() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        // One proxy: the address it appended.
        assert_eq!(
            client(&p, "127.0.0.1", &[("x-forwarded-for", "203.0.113.7")]).ip,
            ip("203.0.113.7")
        );
        // A spoofed left-most entry is never reached.
        assert_eq!(
            client(
                &p,
                "127.0.0.1",
                &[("x-forwarded-for", "1.2.3.4, 203.0.113.7")]
            )
            .ip,
            ip("203.0.113.7")
        );
        // A chain of trusted proxies is skipped.
        assert_eq!(
            client(
                &p,
                "127.0.0.1",
                &[(
                    "x-forwarded-for",
                    "6.6.6.6, 198.51.100.9, 10.1.2.3, 10.0.0.1"
                )]
            )
            .ip,
            ip("198.51.100.9")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            client(
                &p,
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "198.51.100.9, 10.0.0.2")
                ]
            )
            .ip,
            ip("198.51.100.9")
        );
        // Every hop trusted: the left-most.
        assert_eq!(
            client(
                &p,
                "127.0.0.1",
                &[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]
            )
            .ip,
            ip("10.0.0.5")
        );
        // Garbage stops the walk at the nearest valid hop.
        assert_eq!(
            client(
                &p,
                "127.0.0.1",
                &[("x-forwarded-for", "203.0.113.1, nonsense, 10.0.0.6")]
            )
            .ip,
            ip("10.0.0.6")
        );
        assert_eq!(
            client(&p, "127.0.0.1", &[("x-forwarded-for", "nonsense")]).ip,
            ip("127.0.0.1")
        );
        assert_eq!(
            client(&p, "127.0.0.1", &[("x-forwarded-for", "")]).ip,
            ip("127.0.0.1")
        );
        // Ports and brackets, and IPv4-mapped IPv6, are understood.
        assert_eq!(
            client(
                &p,
                "::ffff:127.0.0.1",
                &[("x-forwarded-for", "[2001:db8::7]:4711, 203.0.113.8:80")]
            )
            .ip,
            ip("203.0.113.8")
        );
        assert_eq!(
            client(
                &p,
                "127.0.0.1",
                &[("x-forwarded-for", "[2001:db8::7], 10.0.0.1")]
            )
            .ip,
            ip("2001:db8::7")
        );
        // Without X-Forwarded-For the trusted peer is the client.
        assert_eq!(client(&p, "10.9.9.9", &[]).ip, ip("10.9.9.9"));
    }

    #[test]
    fn the_scheme_comes_from_x_forwarded_proto() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let https = |pairs: &[(&str, &str)]| client(&p, "127.0.0.1", pairs).https;
        assert!(https(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https")
        ]));
        assert!(
            https(&[("x-forwarded-proto", "HTTPS")]),
            "no XFF: the peer, its proto"
        );
        assert!(!https(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "http")
        ]));
        assert!(!https(&[("x-forwarded-for", "203.0.113.7")]));
        // One entry per hop: the client's own.
        assert!(https(&[
            ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
            ("x-forwarded-proto", "https, http")
        ]));
        // Not one per hop: the nearest proxy's.
        assert!(!https(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.1"),
            ("x-forwarded-proto", "https, http")
        ]));
        assert!(
            p.resolve(
                ip("127.0.0.1"),
                true,
                &headers(&[("x-forwarded-for", "203.0.113.7")])
            )
            .https,
            "the connection's scheme when no proxy says"
        );
    }

    #[test]
    fn the_forwarded_header_is_read_when_there_is_no_x_forwarded_for() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let c = client(
            &p,
            "127.0.0.1",
            &[(
                "forwarded",
                r#"for=1.2.3.4, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1, For=10.0.0.2;proto=http"#,
            )],
        );
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("2001:db8:cafe::17"),
                https: true
            }
        );
        let c = client(
            &p,
            "127.0.0.1",
            &[("forwarded", "for=unknown, for=10.0.0.3")],
        );
        assert_eq!(c.ip, ip("10.0.0.3"), "unknown stops the walk");
        let c = client(&p, "127.0.0.1", &[("forwarded", "for=_hidden;proto=https")]);
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("127.0.0.1"),
                https: false
            }
        );
        let c = client(
            &p,
            "127.0.0.1",
            &[("forwarded", r#"for="198.51.100.1,x";proto="https""#)],
        );
        assert_eq!(c.ip, ip("127.0.0.1"), "quoted commas do not split");
        // X-Forwarded-For wins when both are sent.
        let c = client(
            &p,
            "127.0.0.1",
            &[
                ("forwarded", "for=6.6.6.6"),
                ("x-forwarded-for", "203.0.113.7"),
            ],
        );
        assert_eq!(c.ip, ip("203.0.113.7"));
    }

    #[test]
    fn quoted_strings_and_splitting() {
        assert_eq!(split_unquoted(r#"a="x,y",b"#, ','), [r#"a="x,y""#, "b"]);
        assert_eq!(unquote(r#""a\"b""#), r#"a"b"#);
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(parse_node("unknown"), None);
        assert_eq!(parse_node("_obf"), None);
    }
}
