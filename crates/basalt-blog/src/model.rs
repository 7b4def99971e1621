//! The RealWorld JSON shapes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

/// RFC 3339 with milliseconds, always: the RealWorld clients expect a
/// fractional part.
pub fn serialize_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The signed-in user, with their token. Documented as `RealWorldUser`:
/// the identity module's `User` is another shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = RealWorldUser)]
pub struct User {
    /// Email.
    pub email: String,
    /// JWT for `Authorization: Token …`.
    pub token: String,
    /// Username.
    pub username: String,
    /// Biography.
    pub bio: Option<String>,
    /// Avatar URL.
    pub image: Option<String>,
}

/// An author as seen by the viewer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Profile {
    /// Username.
    pub username: String,
    /// Biography.
    pub bio: Option<String>,
    /// Avatar URL.
    pub image: Option<String>,
    /// Whether the viewer follows them.
    pub following: bool,
}

/// An article.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Article {
    /// Id, for the GraphQL API (not part of the RealWorld shape, nor of the
    /// served OpenAPI document).
    #[serde(skip)]
    #[schema(ignore)]
    pub id: uuid::Uuid,
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Markdown body; absent from lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body rendered to sanitised HTML (a Basalt extension; absent from lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_html: Option<String>,
    /// Tags, sorted.
    pub tag_list: Vec<String>,
    /// Creation time.
    #[serde(serialize_with = "serialize_time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last update.
    #[serde(serialize_with = "serialize_time")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// How many users favourited it.
    pub favorites_count: i64,
    /// The author.
    pub author: Profile,
    /// Whether the viewer favourited it. Serialized last, right after the
    /// author (whose `following` is last too): cached pages find both flags
    /// at the end of each article (`crate::pages`).
    pub favorited: bool,
}

/// A comment.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// Id.
    pub id: i64,
    /// The article's id, for the GraphQL API (not part of the RealWorld
    /// shape, nor of the served OpenAPI document).
    #[serde(skip)]
    #[schema(ignore)]
    pub article_id: uuid::Uuid,
    /// Creation time.
    #[serde(serialize_with = "serialize_time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last update.
    #[serde(serialize_with = "serialize_time")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// Text.
    pub body: String,
    /// The author.
    pub author: Profile,
}

// The shapes the service caches and returns whole; utoipa takes the doc
// comments below for descriptions in the served document.

/// `{"article": …}` out.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleResponse {
    /// The article.
    pub article: Article,
}

/// A page of articles.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArticlesResponse {
    /// The page (no bodies).
    pub articles: Vec<Article>,
    /// How many articles match in total.
    pub articles_count: i64,
}

/// `{"tags": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagsResponse {
    /// Every tag in use, alphabetically.
    pub tags: Vec<String>,
}
