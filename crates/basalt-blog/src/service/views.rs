//! Article list entries as the cache keeps them, for the service's typed
//! answers, whose callers render them (the RealWorld list pages keep JSON
//! with the flags' offsets instead, [`crate::pages`]). GraphQL's keyset
//! pages are kept as every viewer sees them, and a viewer's flags
//! (`favorited`, the author's `following`) come from one indexed statement
//! per request; a reader's feed pages are kept for that reader, flags
//! included.

use std::collections::{HashMap, HashSet};

use basalt_identity::model::User;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::profile_of;
use crate::model::{Article, Profile};
use crate::store::{ArticleRow, ViewerFlags};

/// An author as cached; `id` is None when the account is gone (nobody
/// follows "[deleted]").
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CachedAuthor {
    id: Option<Uuid>,
    username: String,
    bio: Option<String>,
    image: Option<String>,
    /// Whether the viewer the row was read for follows them (false when
    /// read for nobody: shared views take the flag per viewer instead).
    following: bool,
}

impl CachedAuthor {
    fn of(id: Uuid, following: bool, authors: &HashMap<Uuid, User>) -> Self {
        let user = authors.get(&id);
        let Profile {
            username,
            bio,
            image,
            following,
        } = profile_of(user, following);
        Self {
            id: user.map(|_| id),
            username,
            bio,
            image,
            following,
        }
    }

    /// The profile as the viewer the row was read for sees it.
    fn seen_as_read(self) -> Profile {
        Profile {
            following: self.following,
            username: self.username,
            bio: self.bio,
            image: self.image,
        }
    }

    /// The profile for a viewer who follows `followed`.
    fn seen_by(self, followed: &HashSet<Uuid>) -> Profile {
        Profile {
            following: self.id.is_some_and(|id| followed.contains(&id)),
            username: self.username,
            bio: self.bio,
            image: self.image,
        }
    }

    /// The author's id, unless the account is gone.
    pub(crate) fn id(&self) -> Option<Uuid> {
        self.id
    }
}

/// A list entry of an article (no body) as cached.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CachedArticle {
    id: Uuid,
    slug: String,
    title: String,
    description: String,
    tag_list: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    favorites_count: i64,
    author: CachedAuthor,
    /// Whether the viewer the row was read for favourited it.
    favorited: bool,
}

impl CachedArticle {
    /// `row` with its author from `authors`, and the flags of the viewer
    /// it was read for, if any.
    pub(crate) fn of(row: ArticleRow, authors: &HashMap<Uuid, User>) -> Self {
        Self {
            author: CachedAuthor::of(row.author_id, row.following, authors),
            favorited: row.favorited,
            id: row.id,
            slug: row.slug,
            title: row.title,
            description: row.description,
            tag_list: serde_json::from_str(&row.tag_list).unwrap_or_default(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            favorites_count: row.favorites_count,
        }
    }

    /// The article's id.
    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// Its author.
    pub(crate) fn author(&self) -> &CachedAuthor {
        &self.author
    }

    /// The article as the viewer it was read for sees it: a view cached
    /// for one viewer only (their feed).
    pub(crate) fn seen_as_read(mut self) -> Article {
        let author = std::mem::take(&mut self.author).seen_as_read();
        let favorited = self.favorited;
        self.into_article(favorited, author)
    }

    /// The article as a viewer with `flags` sees it.
    pub(crate) fn seen_by(mut self, flags: &ViewerFlags) -> Article {
        let author = std::mem::take(&mut self.author).seen_by(&flags.following);
        let favorited = flags.favorited.contains(&self.id);
        self.into_article(favorited, author)
    }

    fn into_article(self, favorited: bool, author: Profile) -> Article {
        Article {
            favorited,
            author,
            id: self.id,
            slug: self.slug,
            title: self.title,
            description: self.description,
            body: None,
            body_html: None,
            tag_list: self.tag_list,
            created_at: self.created_at,
            updated_at: self.updated_at,
            favorites_count: self.favorites_count,
        }
    }
}

/// A keyset page of articles as cached: its rows (one more than the page
/// when more follow) and the filter's total.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CachedArticles {
    /// The rows, in list order.
    pub articles: Vec<CachedArticle>,
    /// How many articles match the filter.
    pub total: i64,
}
