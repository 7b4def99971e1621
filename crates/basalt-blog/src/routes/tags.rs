//! `/api/tags`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use basalt_platform::error::RealWorld;

use crate::model::TagsResponse;
use crate::service::Blog;

/// Every tag in use.
#[utoipa::path(get, path = "/api/tags", tag = "realworld", responses((status = 200, body = TagsResponse)))]
pub async fn tags(State(blog): State<Blog>) -> Result<Response, RealWorld> {
    let bytes = blog.tags().await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}
