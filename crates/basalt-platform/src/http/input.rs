//! Input hygiene at the edge: request values no field can hold are rejected
//! before a handler sees them, the same way on every backend.
//!
//! PostgreSQL refuses U+0000 in `text` (the query fails, a 500), while
//! SQLite stores it: without a check here the two backends disagree. So:
//! - path parameters and query pairs (percent-decoded) may hold no C0
//!   control character and no DEL: a slug, username, tag, id or filter
//!   never contains one;
//! - JSON bodies may hold no NUL (`\u0000`); other control characters are
//!   legitimate in multi-line fields (an article's `\n`), so single-line
//!   fields are checked by the services' own validators.
//!
//! [`Json`], [`Query`] and [`Path`] run these checks and then delegate to
//! axum's extractors, failing with the platform's problem+json errors: 400
//! for a path or query value, 422 naming the body field. Modules with an
//! error shape of their own (the RealWorld blog) call [`check_path`],
//! [`check_query`] and [`json_body`] directly.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// Where a rejected parameter was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A path segment.
    Path,
    /// A query-string pair.
    Query,
}

impl Location {
    fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Query => "query",
        }
    }
}

/// A path or query parameter holding a control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParam {
    /// Path or query.
    pub location: Location,
    /// The parameter's name.
    pub name: String,
}

impl BadParam {
    /// What is wrong, for a message next to the parameter's name.
    pub const MESSAGE: &'static str = "must not contain control characters";
}

impl From<BadParam> for ApiError {
    fn from(p: BadParam) -> Self {
        Self::BadRequest(format!(
            "The {} parameter `{}` {}.",
            p.location.as_str(),
            p.name,
            BadParam::MESSAGE
        ))
    }
}

/// C0 controls (U+0000–U+001F) and DEL: none belongs in a parameter.
pub fn has_control(value: &str) -> bool {
    value.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}')
}

/// The first of `params` (name, decoded value) whose name or value holds a
/// control character.
pub fn find_bad_param<'a>(
    location: Location,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<BadParam> {
    params
        .into_iter()
        .find(|(name, value)| has_control(name) || has_control(value))
        .map(|(name, _)| BadParam {
            location,
            name: name.to_owned(),
        })
}

/// Checks the query string's decoded pairs.
pub fn check_query(parts: &Parts) -> Result<(), BadParam> {
    let Some(query) = parts.uri.query() else {
        return Ok(());
    };
    let pairs: Vec<_> = url::form_urlencoded::parse(query.as_bytes()).collect();
    match find_bad_param(
        Location::Query,
        pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
    ) {
        Some(bad) => Err(bad),
        None => Ok(()),
    }
}

/// Checks the route's decoded path parameters. Parameters that are not
/// valid UTF-8 are left to the typed extractor, which rejects them.
pub async fn check_path(parts: &mut Parts) -> Result<(), BadParam> {
    let Ok(raw) = RawPathParams::from_request_parts(parts, &()).await else {
        return Ok(());
    };
    match find_bad_param(Location::Path, raw.iter()) {
        Some(bad) => Err(bad),
        None => Ok(()),
    }
}

/// Whether a raw JSON text holds an escaped NUL (`\u0000`) anywhere. Raw
/// control bytes are invalid JSON already; `\\u0000` is a backslash
/// followed by literal text, which escape pairs are skipped to tell apart.
pub fn has_escaped_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u')
                && json
                    .get(i + 2..i + 6)
                    .is_some_and(|hex| hex.iter().all(|&b| b == b'0'))
            {
                return true;
            }
            // Skip the escaped character, so that `\\` never starts an escape.
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// The dotted path (`user.email`, `article.tagList[1]`) of the first key or
/// string holding a NUL in `value`.
pub fn nul_field_path(value: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &mut String) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let found = key.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path
        }
    })
}

/// Why a JSON body was refused.
#[derive(Debug)]
pub enum JsonInputError {
    /// A string (or key) at this field path holds a NUL.
    Nul {
        /// Dotted field path, e.g. `user.email`.
        field: String,
    },
    /// axum's own rejection: content type, syntax or types.
    Json(JsonRejection),
    /// The body could not be read (too large, connection lost).
    Body(BytesRejection),
}

impl JsonInputError {
    /// What is wrong with a NUL field.
    pub const NUL_MESSAGE: &'static str = "must not contain NUL characters";
}

impl IntoResponse for JsonInputError {
    fn into_response(self) -> Response {
        match self {
            Self::Nul { field } => {
                ApiError::Validation(vec![FieldError::new(field, Self::NUL_MESSAGE)])
                    .into_response()
            }
            // Plain-text rejections, rewritten into problem+json by
            // `problems::problem_for_bare_errors` with their status kept.
            Self::Json(rejection) => rejection.into_response(),
            Self::Body(rejection) => rejection.into_response(),
        }
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
}

/// Reads a JSON body into `T`, refusing escaped NULs first; otherwise
/// exactly axum's `Json` (415 without a JSON content type, 400 for syntax,
/// 422 for types).
pub async fn json_body<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, JsonInputError> {
    if !is_json_content_type(req.headers()) {
        // axum's rejection, with its status and message.
        return axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| v)
            .map_err(JsonInputError::Json);
    }
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(JsonInputError::Body)?;
    // Rare path: only a body with an escaped NUL is parsed twice. A body
    // that is not JSON at all gets axum's syntax error below.
    if has_escaped_nul(&bytes)
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && let Some(field) = nul_field_path(&value)
    {
        return Err(JsonInputError::Nul { field });
    }
    axum::Json::<T>::from_bytes(&bytes)
        .map(|axum::Json(v)| v)
        .map_err(JsonInputError::Json)
}

/// A JSON body, checked for NULs; also a JSON response (as `axum::Json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = JsonInputError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        json_body(req, state).await.map(Self)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters, checked for control characters; a bad one is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        check_query(parts)?;
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|r| ApiError::BadRequest(r.body_text()))
    }
}

/// Path parameters, checked for control characters; a bad one is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        check_path(parts).await?;
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|r| ApiError::BadRequest(r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaped_nul_minds_backslash_parity() {
        assert!(has_escaped_nul(br#"{"a":"x\u0000y"}"#));
        assert!(has_escaped_nul(br#"{"a":"\\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a":"\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a":"\u0001\n"}"#));
        assert!(!has_escaped_nul(b"\\u000"));
        assert!(!has_escaped_nul(b"\\"));
    }

    #[test]
    fn nul_paths_name_the_field() {
        let v = json!({"user": {"email": "a\u{0}@b.c", "name": "ok"}});
        assert_eq!(nul_field_path(&v).as_deref(), Some("user.email"));
        let v = json!({"article": {"tagList": ["ok", "b\u{0}"]}});
        assert_eq!(nul_field_path(&v).as_deref(), Some("article.tagList[1]"));
        let v = json!({"k\u{0}": 1});
        assert_eq!(nul_field_path(&v).as_deref(), Some("k\u{0}"));
        assert_eq!(nul_field_path(&json!("\u{0}")).as_deref(), Some("body"));
        assert_eq!(nul_field_path(&json!({"a": ["\\u0000"]})), None);
    }

    #[test]
    fn params_with_controls_are_named() {
        let bad = find_bad_param(Location::Query, [("tag", "ok"), ("author", "a\u{0}b")]);
        assert_eq!(
            bad,
            Some(BadParam {
                location: Location::Query,
                name: "author".into()
            })
        );
        for c in ['\u{1}', '\t', '\n', '\u{1f}', '\u{7f}'] {
            assert!(has_control(&format!("a{c}")), "{c:?}");
        }
        assert!(!has_control("ünïcode and spaces"));
    }
}
