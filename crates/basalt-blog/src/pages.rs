//! Article pages cached once for every viewer.
//!
//! A list page or a single article is the same for every reader but for two
//! flags per article: `favorited`, and the author's `following`. The cache
//! keeps the anonymous JSON, preceded by the ids those flags are about. An
//! anonymous reader gets the JSON as it is; a signed-in reader gets it with
//! their flags set from one indexed query over those ids
//! ([`store::viewer_flags`]). Either way the rows, authors, counts and
//! rendered HTML come from the cache, which every write makes stale.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::BlogError;
use crate::model::Article;
use crate::service::Blog;
use crate::store;

/// The ids behind a page's flags, in the order of its articles.
#[derive(Debug, Default)]
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

/// A page as cached: `n` (u32, little-endian), `n` article ids, `n` author
/// ids (16 bytes each), then the anonymous JSON.
fn encode(ids: &FlagIds, json: &[u8]) -> Vec<u8> {
    let n = ids.articles.len();
    let mut out = Vec::with_capacity(4 + 32 * n + json.len());
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    for id in ids.articles.iter().chain(&ids.authors) {
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(json);
    out
}

/// The ids and the JSON of a cached page; `None` for bytes that are not one
/// (a cache shared with an older version, say).
fn decode(bytes: &[u8]) -> Option<(FlagIds, &[u8])> {
    let n = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let ids_end = 4usize.checked_add(n.checked_mul(32)?)?;
    let ids = bytes.get(4..ids_end)?;
    let uuid = |chunk: &[u8]| Uuid::from_slice(chunk).ok();
    let (articles, authors) = ids.split_at(16 * n);
    Some((
        FlagIds {
            articles: articles.chunks(16).map(uuid).collect::<Option<_>>()?,
            authors: authors.chunks(16).map(uuid).collect::<Option<_>>()?,
        },
        &bytes[ids_end..],
    ))
}

/// The page cached under `key`, or `compute`'s, as `viewer` sees it:
/// JSON bytes, ready to send.
///
/// `compute` builds the anonymous page and the ids of its articles;
/// `articles` reaches the page's articles so that the viewer's flags can be
/// set on them.
pub async fn for_viewer<T, F>(
    blog: &Blog,
    viewer: Option<Uuid>,
    key: &str,
    compute: F,
    articles: fn(&mut T) -> &mut [Article],
) -> Result<Vec<u8>, BlogError>
where
    T: Serialize + DeserializeOwned,
    F: Future<Output = Result<(T, FlagIds), BlogError>>,
{
    let cached = blog
        .cached_bytes(key, async {
            let (page, ids) = compute.await?;
            let json = serde_json::to_vec(&page).map_err(|e| BlogError::Internal(e.into()))?;
            Ok(encode(&ids, &json))
        })
        .await?;
    let (ids, json) =
        decode(&cached).ok_or_else(|| BlogError::Internal(anyhow::anyhow!("bad cached page")))?;
    let Some(viewer) = viewer else {
        return Ok(json.to_vec());
    };
    let mut page: T = serde_json::from_slice(json).map_err(|e| BlogError::Internal(e.into()))?;
    let flags = store::viewer_flags(&blog.db, viewer, &ids.articles, &ids.authors).await?;
    let articles = articles(&mut page);
    if articles.len() != ids.articles.len() {
        return Err(BlogError::Internal(anyhow::anyhow!(
            "cached page has {} articles and {} ids",
            articles.len(),
            ids.articles.len()
        )));
    }
    for ((article, id), author) in articles.iter_mut().zip(&ids.articles).zip(&ids.authors) {
        article.favorited = flags.favorited.contains(id);
        article.author.following = flags.following.contains(author);
    }
    serde_json::to_vec(&page).map_err(|e| BlogError::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_decodes_to_what_was_encoded() {
        let mut ids = FlagIds::default();
        for _ in 0..3 {
            ids.push(Uuid::now_v7(), Uuid::new_v4());
        }
        let bytes = encode(&ids, b"{\"articles\":[]}");
        let (back, json) = decode(&bytes).expect("decodes");
        assert_eq!(back.articles, ids.articles);
        assert_eq!(back.authors, ids.authors);
        assert_eq!(json, b"{\"articles\":[]}");
        let empty = encode(&FlagIds::default(), b"[]");
        let (none, json) = decode(&empty).expect("empty");
        assert!(none.articles.is_empty() && json == b"[]");
    }

    #[test]
    fn bytes_that_are_not_a_page_are_refused() {
        assert!(decode(b"").is_none());
        assert!(decode(b"{\"articles\":[]}").is_none(), "plain JSON");
        assert!(decode(&[5, 0, 0, 0, 1, 2]).is_none(), "truncated ids");
        assert!(decode(&[0xff, 0xff, 0xff, 0xff]).is_none(), "absurd count");
    }
}
