//! Article pages cached once for every viewer.
//!
//! A list page or a single article is the same for every reader but for two
//! flags per article: `favorited`, and the author's `following`. The cache
//! keeps the anonymous JSON, preceded by the ids those flags are about and
//! the byte offsets of the flags in the JSON. An anonymous reader gets the
//! JSON as it is. A signed-in reader gets a copy with their flags switched on
//! in place (`false` becomes `true `, the same length), from one indexed
//! query over the ids ([`store::viewer_flags`]): no JSON is parsed or
//! written per request. Either way the rows, authors, counts and rendered
//! HTML come from the cache, which every write makes stale.

use serde::Serialize;
use uuid::Uuid;

use crate::error::BlogError;
use crate::service::Blog;
use crate::store;

/// How each article of a page ends when serialized: the author's
/// `following`, then `favorited` (see the field order of
/// [`crate::model::Article`]). In serde_json's output this byte sequence can
/// only be structure: inside a string every `"` is escaped, and a string's
/// closing quote is never followed by a letter.
const ARTICLE_END: &[u8] = br#""following":false},"favorited":false}"#;
/// Offsets of the two `false`s within [`ARTICLE_END`].
const FOLLOWING_AT: usize = r#""following":"#.len();
const FAVORITED_AT: usize = ARTICLE_END.len() - "false}".len();

/// The ids behind a page's flags, in the order of its articles.
#[derive(Debug, Default, PartialEq)]
pub struct FlagIds {
    /// Each article's id.
    pub articles: Vec<Uuid>,
    /// Each article's author.
    pub authors: Vec<Uuid>,
}

impl FlagIds {
    /// Records one article.
    pub fn push(&mut self, article: Uuid, author: Uuid) {
        self.articles.push(article);
        self.authors.push(author);
    }
}

/// A decoded cached page.
#[derive(Debug, PartialEq)]
struct Page<'a> {
    ids: FlagIds,
    /// Where each article's `favorited` and author's `following` are in `json`.
    flags_at: Vec<(u32, u32)>,
    json: &'a [u8],
}

/// Where the flags of each article are in `json` (anonymous, so all false);
/// `None` unless there is exactly one place per article.
fn find_flags(json: &[u8], articles: usize) -> Option<Vec<(u32, u32)>> {
    let mut found = Vec::with_capacity(articles);
    let mut from = 0;
    while let Some(at) = json[from..]
        .windows(ARTICLE_END.len())
        .position(|w| w == ARTICLE_END)
    {
        let start = from + at;
        found.push((
            u32::try_from(start + FAVORITED_AT).ok()?,
            u32::try_from(start + FOLLOWING_AT).ok()?,
        ));
        from = start + ARTICLE_END.len();
    }
    (found.len() == articles).then_some(found)
}

/// A page as cached: `n` (u32, little-endian), `n` article ids and `n`
/// author ids (16 bytes each), `n` pairs of flag offsets (u32 each), then
/// the anonymous JSON.
fn encode(ids: &FlagIds, flags_at: &[(u32, u32)], json: &[u8]) -> Vec<u8> {
    let n = ids.articles.len();
    let mut out = Vec::with_capacity(4 + 40 * n + json.len());
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    for id in ids.articles.iter().chain(&ids.authors) {
        out.extend_from_slice(id.as_bytes());
    }
    for (favorited, following) in flags_at {
        out.extend_from_slice(&favorited.to_le_bytes());
        out.extend_from_slice(&following.to_le_bytes());
    }
    out.extend_from_slice(json);
    out
}

/// A cached page; `None` for bytes that are not one (a cache shared with an
/// older version, say), or whose offsets fall outside the JSON.
fn decode(bytes: &[u8]) -> Option<Page<'_>> {
    let n = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let ids_end = 4usize.checked_add(n.checked_mul(32)?)?;
    let flags_end = ids_end.checked_add(n.checked_mul(8)?)?;
    let ids = bytes.get(4..ids_end)?;
    let offsets = bytes.get(ids_end..flags_end)?;
    let json = &bytes[flags_end..];
    let uuid = |chunk: &[u8]| Uuid::from_slice(chunk).ok();
    let word = |chunk: &[u8]| Some(u32::from_le_bytes(chunk.try_into().ok()?));
    let (articles, authors) = ids.split_at(16 * n);
    let flags_at = offsets
        .chunks(8)
        .map(|pair| Some((word(&pair[..4])?, word(&pair[4..])?)))
        .collect::<Option<Vec<_>>>()?;
    let in_json = |at: u32| json.get(at as usize..at as usize + 5) == Some(b"false");
    if !flags_at.iter().all(|&(a, b)| in_json(a) && in_json(b)) {
        return None;
    }
    Some(Page {
        ids: FlagIds {
            articles: articles.chunks(16).map(uuid).collect::<Option<_>>()?,
            authors: authors.chunks(16).map(uuid).collect::<Option<_>>()?,
        },
        flags_at,
        json,
    })
}

/// The page cached under `key`, or `compute`'s, as `viewer` sees it:
/// JSON bytes, ready to send.
///
/// `compute` builds the anonymous page and the ids of its articles, in the
/// order they appear in it.
pub async fn for_viewer<T, F>(
    blog: &Blog,
    viewer: Option<Uuid>,
    key: &str,
    compute: F,
) -> Result<Vec<u8>, BlogError>
where
    T: Serialize,
    F: Future<Output = Result<(T, FlagIds), BlogError>>,
{
    let internal = |what: &str| BlogError::Internal(anyhow::anyhow!("{what}"));
    let cached = blog
        .cached_bytes(key, async {
            let (page, ids) = compute.await?;
            let json = serde_json::to_vec(&page).map_err(|e| BlogError::Internal(e.into()))?;
            let flags_at = find_flags(&json, ids.articles.len())
                .ok_or_else(|| internal("a page's articles do not end as pages.rs expects"))?;
            Ok(encode(&ids, &flags_at, &json))
        })
        .await?;
    let Page {
        ids,
        flags_at,
        json,
    } = decode(&cached).ok_or_else(|| internal("bad cached page"))?;
    // The cache handed over its own copy: the response is that copy with
    // the header cut off (moved in place, not copied again), the offsets
    // being relative to the JSON.
    let header = cached.len() - json.len();
    let mut json = cached;
    json.drain(..header);
    let Some(viewer) = viewer else {
        return Ok(json);
    };
    let flags = store::viewer_flags(&blog.db, viewer, &ids.articles, &ids.authors).await?;
    for (i, &(favorited_at, following_at)) in flags_at.iter().enumerate() {
        if flags.favorited.contains(&ids.articles[i]) {
            set_true(&mut json, favorited_at);
        }
        if flags.following.contains(&ids.authors[i]) {
            set_true(&mut json, following_at);
        }
    }
    Ok(json)
}

/// Turns the `false` at `at` into `true ` (JSON allows the space).
fn set_true(json: &mut [u8], at: u32) {
    json[at as usize..at as usize + 5].copy_from_slice(b"true ");
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::{Value, json};

    use super::*;
    use crate::model::{Article, ArticleResponse, ArticlesResponse, Profile};

    fn article(title: &str) -> Article {
        Article {
            id: Uuid::now_v7(),
            slug: title.to_lowercase(),
            title: title.to_owned(),
            // Strings that look like the flags must not be taken for them.
            description: r#""following":false},"favorited":false} \" \\"#.to_owned(),
            body: None,
            body_html: None,
            tag_list: vec!["favorited".into()],
            created_at: Utc::now(),
            updated_at: Utc::now(),
            favorites_count: 3,
            author: Profile {
                username: "\"following\":false}".into(),
                bio: Some("\\".into()),
                image: None,
                following: false,
            },
            favorited: false,
        }
    }

    /// A list page as the route serializes it (a `serde_json::Value` would
    /// sort the keys).
    fn page_of(titles: &[&str]) -> (FlagIds, Vec<u8>) {
        let page = ArticlesResponse {
            articles: titles.iter().map(|t| article(t)).collect(),
            articles_count: titles.len() as i64,
        };
        let mut ids = FlagIds::default();
        for _ in titles {
            ids.push(Uuid::now_v7(), Uuid::new_v4());
        }
        (ids, serde_json::to_vec(&page).expect("serializes"))
    }

    #[test]
    fn each_flag_is_found_once_per_article_and_strings_are_not_taken_for_flags() {
        let (ids, json) = page_of(&["One", "Two", "Three"]);
        let flags_at = find_flags(&json, 3).expect("three articles, three places");
        let bytes = encode(&ids, &flags_at, &json);
        let page = decode(&bytes).expect("decodes");
        assert_eq!(page.ids, ids);
        assert_eq!(page.json, json.as_slice());
        assert!(
            find_flags(&json, 2).is_none(),
            "a count that does not match is refused"
        );
    }

    #[test]
    fn switching_flags_on_gives_the_json_serde_would_write() {
        let (ids, json) = page_of(&["One", "Two"]);
        let flags_at = find_flags(&json, 2).expect("found");
        let mut patched = json.clone();
        set_true(&mut patched, flags_at[0].0); // the first article favourited
        set_true(&mut patched, flags_at[1].1); // the second one's author followed
        let patched: Value = serde_json::from_slice(&patched).expect("still JSON");
        let mut expected: Value = serde_json::from_slice(&json).expect("JSON");
        expected["articles"][0]["favorited"] = json!(true);
        expected["articles"][1]["author"]["following"] = json!(true);
        assert_eq!(patched, expected);
        assert_eq!(ids.articles.len(), 2);
    }

    #[test]
    fn a_single_article_page_works_the_same() {
        let one = ArticleResponse {
            article: article("Solo"),
        };
        let json = serde_json::to_vec(&one).expect("serializes");
        assert_eq!(find_flags(&json, 1).map(|f| f.len()), Some(1));
    }

    #[test]
    fn bytes_that_are_not_a_page_are_refused() {
        assert!(decode(b"").is_none());
        assert!(decode(b"{\"articles\":[]}").is_none(), "plain JSON");
        assert!(decode(&[5, 0, 0, 0, 1, 2]).is_none(), "truncated ids");
        assert!(decode(&[0xff, 0xff, 0xff, 0xff]).is_none(), "absurd count");
        let (ids, json) = page_of(&["One"]);
        let wrong = encode(&ids, &[(0, 1)], &json);
        assert!(
            decode(&wrong).is_none(),
            "offsets that do not point at a flag"
        );
        let empty = encode(&FlagIds::default(), &[], b"[]");
        assert_eq!(decode(&empty).map(|p| p.json), Some(&b"[]"[..]));
    }
}
