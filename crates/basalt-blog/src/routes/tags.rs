//! `/api/tags`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::BlogError;
use crate::service::Blog;
use crate::store;

/// `{"tags": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagsResponse {
    /// Every tag in use, alphabetically.
    pub tags: Vec<String>,
}

/// Every tag in use.
#[utoipa::path(get, path = "/api/tags", tag = "realworld", responses((status = 200, body = TagsResponse)))]
pub async fn tags(State(blog): State<Blog>) -> Result<Response, BlogError> {
    let bytes = blog
        .cached("tags", async {
            Ok(TagsResponse {
                tags: store::tags(&blog.db).await?,
            })
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}
