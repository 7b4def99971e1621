//! The RealWorld routes, under `/api`.

pub(crate) mod articles;
mod comments;
mod feeds;
mod profiles;
mod tags;
mod users;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Blog;

/// Every blog route, documented.
pub fn router(blog: Blog) -> OpenApiRouter {
    OpenApiRouter::new()
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
        .with_state(blog)
}
