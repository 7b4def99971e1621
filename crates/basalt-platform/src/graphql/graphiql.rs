//! GraphiQL, the in-browser GraphQL IDE, at [`GRAPHIQL_PATH`]: a page and its
//! assets, all compiled into the binary (the vendored builds and their
//! hashes are listed in `assets/graphiql/VENDORED.md`), so the page loads
//! nothing from another origin and runs under a CSP without inline script.

use axum::Router;
use axum::body::Bytes;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::routing::get;

/// Where the page is served.
pub const GRAPHIQL_PATH: &str = "/graphiql";
/// The prefix of its assets' paths.
pub const ASSETS_PATH: &str = "/graphiql/assets";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";
/// Every asset's path holds a version or a hash of its content, so a cached
/// copy is never stale; the page itself is revalidated, so an upgrade shows.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// How an asset is named in its path.
#[derive(Debug, Clone, Copy)]
enum Name {
    /// A file of an npm package: served as `package@version/file`.
    Vendored {
        package: &'static str,
        version: &'static str,
        file: &'static str,
    },
    /// One of Basalt's own files: served as `stem.HASH.ext`.
    Own(&'static str),
}

/// One file the page loads.
#[derive(Debug, Clone, Copy)]
struct Asset {
    name: Name,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// In the order the page names them: the scripts run in this order.
const ASSETS: [Asset; 7] = [
    // Without an icon, browsers ask for `/favicon.ico` and log its 404.
    Asset {
        name: Name::Own("icon.svg"),
        content_type: SVG,
        bytes: include_bytes!("graphiql/icon.svg"),
    },
    Asset {
        name: Name::Vendored {
            package: "graphiql",
            version: "3.9.0",
            file: "graphiql.min.css",
        },
        content_type: CSS,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: Name::Own("page.css"),
        content_type: CSS,
        bytes: include_bytes!("graphiql/page.css"),
    },
    Asset {
        name: Name::Vendored {
            package: "react",
            version: "18.3.1",
            file: "react.production.min.js",
        },
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: Name::Vendored {
            package: "react-dom",
            version: "18.3.1",
            file: "react-dom.production.min.js",
        },
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: Name::Vendored {
            package: "graphiql",
            version: "3.9.0",
            file: "graphiql.min.js",
        },
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: Name::Own("start.js"),
        content_type: JS,
        bytes: include_bytes!("graphiql/start.js"),
    },
];

impl Asset {
    /// The asset's path under [`ASSETS_PATH`]. Only Basalt's own (small)
    /// files are hashed: reading the vendored megabyte would make it resident.
    fn path(&self) -> String {
        match self.name {
            Name::Vendored {
                package,
                version,
                file,
            } => format!("{ASSETS_PATH}/{package}@{version}/{file}"),
            Name::Own(file) => {
                let (stem, ext) = file.rsplit_once('.').unwrap_or((file, ""));
                format!("{ASSETS_PATH}/{stem}.{:016x}.{ext}", fnv1a(self.bytes))
            }
        }
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, enough to tell two
/// versions of a file apart (not a defence against anyone).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The routes of the page and its assets, for a GraphQL `endpoint` on this
/// origin (a path such as `/graphql`): queries and mutations are POSTed to
/// it, subscriptions open a WebSocket (`graphql-transport-ws`) on the same
/// path, `ws:` or `wss:` as the page's own scheme.
///
/// The page sets its own CSP, which the platform's security headers keep:
/// scripts and styles from this origin only, fonts from `data:` (GraphiQL's
/// stylesheet inlines them), connections to this origin and its WebSocket.
pub fn router(endpoint: &'static str) -> Router {
    let paths: Vec<(String, Asset)> = ASSETS.iter().map(|a| (a.path(), *a)).collect();
    let page = Bytes::from(render_page(endpoint, &paths));
    let mut router = Router::new().route(
        GRAPHIQL_PATH,
        get(move |uri: Uri, headers: HeaderMap| {
            let page = page.clone();
            async move {
                (
                    [
                        (CONTENT_TYPE, HeaderValue::from_static(HTML)),
                        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                        (CONTENT_SECURITY_POLICY, page_csp(&uri, &headers)),
                    ],
                    page,
                )
            }
        }),
    );
    for (path, asset) in paths {
        router = router.route(
            &path,
            get(move || async move {
                (
                    [
                        (CONTENT_TYPE, asset.content_type),
                        (CACHE_CONTROL, IMMUTABLE),
                    ],
                    Bytes::from_static(asset.bytes),
                )
            }),
        );
    }
    router
}

/// The page: its icon, stylesheets, deferred scripts (run in order once
/// the document is parsed) and the element GraphiQL renders into, which
/// carries the endpoint for `start.js`.
fn render_page(endpoint: &str, assets: &[(String, Asset)]) -> String {
    let mut links = String::new();
    for (path, asset) in assets {
        let link = match asset.content_type {
            CSS => format!("<link rel=\"stylesheet\" href=\"{path}\">\n"),
            SVG => format!("<link rel=\"icon\" href=\"{path}\">\n"),
            _ => format!("<script defer src=\"{path}\"></script>\n"),
        };
        links.push_str(&link);
    }
    let endpoint = escape_attribute(endpoint);
    format!(
        "<!doctype html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Basalt GraphiQL</title>\n\
         {links}\
         </head>\n\
         <body>\n\
         <div id=\"graphiql\" data-endpoint=\"{endpoint}\">Loading GraphiQL...</div>\n\
         <noscript>GraphiQL needs JavaScript.</noscript>\n\
         </body>\n\
         </html>\n"
    )
}

fn escape_attribute(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The page's CSP. `connect-src 'self'` covers the WebSocket in browsers
/// that follow CSP 3, not in all others, so the request's own host is
/// allowed over `ws:` and `wss:` too (only the matching one can be used: a
/// secure page may not open `ws:`).
fn page_csp(uri: &Uri, headers: &HeaderMap) -> HeaderValue {
    let connect = match own_authority(uri, headers) {
        Some(authority) => format!("'self' ws://{authority} wss://{authority}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src data:; connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'none'"
    );
    // `own_authority` lets through only characters valid in a header.
    HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

/// The host (and port) the request was sent to, from the HTTP/2 authority
/// or the `Host` header; `None` if absent or holding anything but a host
/// name, an IP address and a port, which could otherwise add directives.
fn own_authority(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let authority = match uri.authority() {
        Some(authority) => authority.clone(),
        None => headers
            .get(HOST)?
            .to_str()
            .ok()?
            .parse::<Authority>()
            .ok()?,
    };
    let host = authority.host();
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b".-:[]".contains(&b);
    if host.is_empty() || !host.bytes().all(allowed) {
        return None;
    }
    Some(match authority.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    async fn get(router: &Router, path: &str, host: &str) -> axum::response::Response {
        let request = Request::get(path)
            .header(HOST, host)
            .body(Body::empty())
            .expect("request");
        router.clone().oneshot(request).await.expect("response")
    }

    async fn text(response: axum::response::Response) -> String {
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    fn header<'a>(response: &'a axum::response::Response, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .expect("ASCII")
    }

    /// Every `src="…"` and `href="…"` value in the page.
    fn references(page: &str) -> Vec<&str> {
        let mut found = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            let mut rest = page;
            while let Some(start) = rest.find(attribute) {
                rest = &rest[start + attribute.len()..];
                let end = rest.find('"').expect("closing quote");
                found.push(&rest[..end]);
                rest = &rest[end..];
            }
        }
        found
    }

    fn assert_no_cdn(what: &str, text: &str) {
        // An SVG file names its namespace; that is not a place to load from.
        let lower = text
            .to_ascii_lowercase()
            .replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for word in ["http://", "https://", "unpkg", "jsdelivr", "cdn"] {
            assert!(!lower.contains(word), "{what} contains {word:?}");
        }
    }

    #[tokio::test]
    async fn the_page_loads_only_its_own_assets_under_its_csp() {
        let router = router("/graphql");
        let response = get(&router, GRAPHIQL_PATH, "localhost:8080").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), HTML);
        assert_eq!(header(&response, "cache-control"), "no-cache");
        let csp = header(&response, "content-security-policy").to_owned();
        for directive in [
            "default-src 'none'",
            "script-src 'self';",
            "style-src 'self';",
            "connect-src 'self' ws://localhost:8080 wss://localhost:8080;",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} not in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");

        let page = text(response).await;
        assert!(page.starts_with("<!doctype html>"), "{page}");
        assert!(page.contains("data-endpoint=\"/graphql\""), "{page}");
        assert!(!page.contains("<script>"), "an inline script: {page}");
        assert!(!page.contains("<style"), "an inline style: {page}");
        assert_no_cdn("the page", &page);
        let references = references(&page);
        assert_eq!(references.len(), ASSETS.len(), "{page}");
        for path in references {
            assert!(path.starts_with("/graphiql/assets/"), "{path}");
            let response = get(&router, path, "localhost:8080").await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let expected = match path.rsplit_once('.').map(|(_, ext)| ext) {
                Some("js") => JS,
                Some("css") => CSS,
                Some("svg") => SVG,
                _ => panic!("an asset of no known type: {path}"),
            };
            assert_eq!(header(&response, "content-type"), expected, "{path}");
            assert_eq!(header(&response, "cache-control"), IMMUTABLE, "{path}");
            let body = text(response).await;
            assert!(body.len() > 50, "{path}: {body}");
            // Basalt's own files name no other origin; the vendored ones
            // may, in comments and messages (GraphiQL's explains CDN use).
            if !path.contains('@') {
                assert_no_cdn(path, &body);
            }
        }
    }

    #[tokio::test]
    async fn anything_else_under_the_assets_is_not_found() {
        let router = router("/graphql");
        for path in [
            "/graphiql/assets/graphiql.min.js",
            "/graphiql/assets/graphiql@3.9.0/graphiql.min.js.map",
            "/graphiql/assets/start.js",
        ] {
            let response = get(&router, path, "localhost").await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn own_files_are_named_by_their_content() {
        let asset = |bytes| Asset {
            name: Name::Own("start.js"),
            content_type: JS,
            bytes,
        };
        let one = asset(b"one").path();
        assert!(one.starts_with("/graphiql/assets/start."), "{one}");
        assert!(one.ends_with(".js"), "{one}");
        assert_eq!(one, asset(b"one").path());
        assert_ne!(one, asset(b"two").path());
    }

    #[test]
    fn every_vendored_version_is_recorded() {
        let record = include_str!("../../assets/graphiql/VENDORED.md");
        for asset in ASSETS {
            if let Name::Vendored {
                package,
                version,
                file,
            } = asset.name
            {
                let line = format!("| `{package}@{version}` |");
                assert!(record.contains(&line), "{line} not in VENDORED.md");
                assert!(record.contains(&format!("`{file}`")), "{file}");
            }
        }
    }

    #[tokio::test]
    async fn a_host_that_is_not_one_adds_nothing_to_the_csp() {
        let router = router("/graphql");
        for host in ["evil; script-src *", "a b", "x'y"] {
            let response = get(&router, GRAPHIQL_PATH, host).await;
            let csp = header(&response, "content-security-policy");
            assert!(csp.contains("connect-src 'self';"), "{host}: {csp}");
            assert!(!csp.contains('*'), "{host}: {csp}");
        }
        let response = get(&router, GRAPHIQL_PATH, "[::1]:3000").await;
        let csp = header(&response, "content-security-policy");
        assert!(csp.contains("ws://[::1]:3000 wss://[::1]:3000"), "{csp}");
    }

    #[tokio::test]
    async fn the_endpoint_is_escaped_in_the_page() {
        let router = router("/graphql?a=\"><script>");
        let page = text(get(&router, GRAPHIQL_PATH, "localhost").await).await;
        assert!(
            page.contains("data-endpoint=\"/graphql?a=&quot;&gt;&lt;script&gt;\""),
            "{page}"
        );
    }
}
