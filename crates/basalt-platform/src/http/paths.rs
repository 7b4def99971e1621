//! One trailing slash on an API route is the route: RealWorld's most-used
//! front end creates articles with `POST /api/articles/`, and its reference
//! backend accepts it. Rewritten before routing, not redirected: a redirected
//! POST would lose its body or its method in many clients.

use axum::extract::Request;
use axum::http::Uri;
use axum::http::uri::PathAndQuery;

/// Where API routes live; the docs (`/docs/`) keep their own slash.
const API_PREFIX: &str = "/api/";

/// `/api/articles/?limit=5` becomes `/api/articles?limit=5`; any other path
/// is left as it is (one slash only: `/api/articles//` stays unknown).
pub fn trim_api_trailing_slash(mut request: Request) -> Request {
    let uri = request.uri();
    let path = uri.path();
    if !(path.len() > API_PREFIX.len() && path.starts_with(API_PREFIX) && path.ends_with('/')) {
        return request;
    }
    let trimmed = &path[..path.len() - 1];
    let path_and_query = match uri.query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(p) = PathAndQuery::try_from(path_and_query) {
        parts.path_and_query = Some(p);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(uri: &str) -> String {
        let request = Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .expect("request");
        trim_api_trailing_slash(request).uri().to_string()
    }

    #[test]
    fn one_trailing_slash_of_an_api_path_is_dropped() {
        assert_eq!(path_of("/api/articles/"), "/api/articles");
        assert_eq!(path_of("/api/articles/?limit=5"), "/api/articles?limit=5");
        assert_eq!(path_of("/api/articles//"), "/api/articles/");
        assert_eq!(path_of("/api/articles"), "/api/articles");
        assert_eq!(path_of("/api/"), "/api/");
        assert_eq!(path_of("/docs/"), "/docs/");
    }
}
