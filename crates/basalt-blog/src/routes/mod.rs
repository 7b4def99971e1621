//! The RealWorld routes, under `/api`.

pub(crate) mod articles;
mod comments;
mod feeds;
mod profiles;
mod tags;
mod users;

use basalt_platform::http::docs::{ErrorDocs, document_errors};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::RealWorldErrors;
use crate::service::Blog;

/// How the RealWorld routes fail: `{"errors": {"field": ["message"]}}`,
/// a 422 for any refused input (body, path or query).
const REALWORLD_ERRORS: ErrorDocs = ErrorDocs {
    content_type: "application/json",
    schema: "RealWorldErrors",
    body_errors: &[(
        422,
        "The body is not JSON, a field is missing, of the wrong type, invalid or holds a NUL",
    )],
    param_errors: &[(
        422,
        "A path or query value is malformed, out of range or holds a control character",
    )],
};

/// Every blog route, documented.
pub fn router(blog: Blog) -> OpenApiRouter {
    let mut router = OpenApiRouter::new()
        .routes(routes!(users::register))
        .routes(routes!(users::login))
        .routes(routes!(users::current_user, users::update_user))
        .routes(routes!(profiles::get_profile))
        .routes(routes!(profiles::follow, profiles::unfollow))
        .routes(routes!(articles::list_articles, articles::create_article))
        .routes(routes!(articles::feed))
        .routes(routes!(
            articles::get_article,
            articles::update_article,
            articles::delete_article
        ))
        .routes(routes!(articles::favorite, articles::unfavorite))
        .routes(routes!(comments::list_comments, comments::add_comment))
        .routes(routes!(comments::delete_comment))
        .routes(routes!(tags::tags))
        .routes(routes!(feeds::atom))
        .routes(routes!(feeds::rss))
        .with_state(blog);
    let doc = router.get_openapi_mut();
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(
            RealWorldErrors::name().into_owned(),
            RealWorldErrors::schema(),
        );
    document_errors(doc, &REALWORLD_ERRORS);
    router
}
