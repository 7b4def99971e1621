//! Keyset pages ("connections") of articles and comments, for the GraphQL
//! API: a page request (`first`, `after`), the opaque cursor and the page.
//!
//! A cursor is the key of the last item a client saw; the next page starts
//! below it (articles, newest first by UUID v7 id) or above it (comments,
//! oldest first by id). Paging by key rather than by offset keeps a page
//! deep in a list as cheap as the first, and an article published between
//! two requests neither repeats nor skips an item.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::BlogError;

/// Largest `first`; default 20 when None.
pub const MAX_FIRST: i64 = 100;
/// `first` when the client gives none.
pub const DEFAULT_FIRST: i64 = 20;

/// The longest cursor text worth decoding: an article's is 50 characters.
const MAX_CURSOR_CHARS: usize = 64;

/// A forward page request, parsed from GraphQL arguments `first: Int, after: String`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items, 1 to [`MAX_FIRST`].
    pub first: i64,
    /// The position after which the page starts; `None` for the first page.
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// `first` 1..=MAX_FIRST (None: DEFAULT_FIRST); `after` decoded with Cursor::decode.
    /// Errors: BlogError::Invalid with field "first" / "after" (clear messages).
    pub fn parse(first: Option<i64>, after: Option<&str>) -> Result<Self, BlogError> {
        let mut errors = Vec::new();
        let first = match first {
            None => DEFAULT_FIRST,
            Some(n) if (1..=MAX_FIRST).contains(&n) => n,
            Some(_) => {
                errors.push((
                    "first".to_owned(),
                    format!("must be a whole number from 1 to {MAX_FIRST}"),
                ));
                0
            }
        };
        let after = match after.map(Cursor::decode).transpose() {
            Ok(after) => after,
            Err(BlogError::Invalid(mut bad)) => {
                errors.append(&mut bad);
                None
            }
            Err(other) => return Err(other),
        };
        if errors.is_empty() {
            Ok(Self { first, after })
        } else {
            Err(BlogError::Invalid(errors))
        }
    }

    /// The article id to start below, if any; a comment cursor is refused.
    pub fn article_after(&self) -> Result<Option<Uuid>, BlogError> {
        match self.after {
            None => Ok(None),
            Some(Cursor::Article(id)) => Ok(Some(id)),
            Some(Cursor::Comment(_)) => Err(not_this_list()),
        }
    }

    /// The comment id to start above, if any; an article cursor is refused.
    pub fn comment_after(&self) -> Result<Option<i64>, BlogError> {
        match self.after {
            None => Ok(None),
            Some(Cursor::Comment(id)) => Ok(Some(id)),
            Some(Cursor::Article(_)) => Err(not_this_list()),
        }
    }

    /// How many rows to fetch: one more than the page, to know whether
    /// another page follows.
    pub(crate) fn fetch(&self) -> i64 {
        self.first + 1
    }
}

fn not_this_list() -> BlogError {
    BlogError::invalid("after", "is not a cursor of this list")
}

fn not_a_cursor() -> BlogError {
    BlogError::invalid("after", "is not a valid cursor")
}

/// An opaque keyset cursor: the position after which the next page starts.
/// Encoded as URL-safe base64 of a small tagged text, e.g. "a:<uuid>" for articles, "c:<id>" for comments; a
/// cursor of one kind is refused by a list of the other kind ("is not a cursor of this list").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// After this article (lists of articles, newest first).
    Article(Uuid),
    /// After this comment (lists of comments, oldest first).
    Comment(i64),
}

impl Cursor {
    /// The cursor as clients see it: URL-safe base64, no padding.
    pub fn encode(&self) -> String {
        let text = match self {
            Self::Article(id) => format!("a:{}", id.hyphenated()),
            Self::Comment(id) => format!("c:{id}"),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    /// A cursor from a client's text (padded base64 is accepted too); anything
    /// else is a 422 on `after`.
    pub fn decode(text: &str) -> Result<Self, BlogError> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(not_a_cursor());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| not_a_cursor())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| not_a_cursor())?;
        match text.split_once(':') {
            Some(("a", id)) => Uuid::try_parse(id)
                .map(Self::Article)
                .map_err(|_| not_a_cursor()),
            Some(("c", id)) => id
                .parse::<i64>()
                .map(Self::Comment)
                .map_err(|_| not_a_cursor()),
            _ => Err(not_a_cursor()),
        }
    }
}

/// One page of a connection.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Items with their cursors, in list order.
    pub edges: Vec<(String, T)>,
    /// Whether more items follow (the page fetched `first + 1` rows to know).
    pub has_next_page: bool,
    /// True when `after` was given (forward-only paging).
    pub has_previous_page: bool,
    /// How many match the filter in total.
    pub total_count: i64,
}

impl<T> Page<T> {
    /// The page of `items`, fetched as up to [`PageRequest::fetch`] rows in
    /// list order, each with the cursor `cursor` gives it.
    pub(crate) fn of(
        mut items: Vec<T>,
        request: &PageRequest,
        total_count: i64,
        cursor: impl Fn(&T) -> Cursor,
    ) -> Self {
        let first = usize::try_from(request.first).unwrap_or(0);
        let has_next_page = items.len() > first;
        items.truncate(first);
        Self {
            edges: items
                .into_iter()
                .map(|item| (cursor(&item).encode(), item))
                .collect(),
            has_next_page,
            has_previous_page: request.after.is_some(),
            total_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: BlogError) -> Vec<String> {
        match error {
            BlogError::Invalid(errors) => errors.into_iter().map(|(f, _)| f).collect(),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn cursors_round_trip_and_stay_url_safe() {
        let id = Uuid::now_v7();
        for cursor in [
            Cursor::Article(id),
            Cursor::Comment(42),
            Cursor::Comment(-1),
        ] {
            let text = cursor.encode();
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{text}"
            );
            assert_eq!(Cursor::decode(&text).expect("decodes"), cursor);
        }
        let text = URL_SAFE_NO_PAD
            .decode(Cursor::Comment(7).encode())
            .expect("base64");
        assert_eq!(text, b"c:7");
    }

    #[test]
    fn text_that_is_not_a_cursor_is_refused_on_after() {
        let not_uuid = URL_SAFE_NO_PAD.encode("a:nope");
        let no_tag = URL_SAFE_NO_PAD.encode("x:1");
        let long = "A".repeat(200);
        for bad in ["", "!!!", not_uuid.as_str(), no_tag.as_str(), long.as_str()] {
            let error = Cursor::decode(bad).expect_err(bad);
            assert_eq!(field_of(error), ["after"], "{bad}");
        }
    }

    #[test]
    fn first_is_bounded_and_both_fields_are_reported() {
        assert_eq!(
            PageRequest::parse(None, None).expect("ok").first,
            DEFAULT_FIRST
        );
        assert_eq!(PageRequest::parse(Some(100), None).expect("ok").first, 100);
        let error = PageRequest::parse(Some(0), Some("???")).expect_err("refused");
        assert_eq!(field_of(error), ["first", "after"]);
    }

    #[test]
    fn a_page_of_first_plus_one_rows_has_a_next_page() {
        let request = PageRequest::parse(Some(2), Some(&Cursor::Comment(1).encode())).expect("ok");
        let page = Page::of(vec![2, 3, 4], &request, 9, |n| Cursor::Comment(*n));
        let items: Vec<i64> = page.edges.iter().map(|(_, n)| *n).collect();
        assert_eq!(items, [2, 3]);
        assert!(page.has_next_page && page.has_previous_page);
        assert_eq!(page.edges[1].0, Cursor::Comment(3).encode());
        let last = Page::of(vec![5], &request, 9, |n| Cursor::Comment(*n));
        assert!(!last.has_next_page);
    }
}
