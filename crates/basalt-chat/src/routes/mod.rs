//! The chat's REST API under `/api/chat`, JSON in snake_case, errors as
//! problem+json. Each handler parses, calls one [`Chat`] method and renders.

mod messages;
mod rooms;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Chat;

/// Every documented chat route, with its state.
pub fn router(chat: Chat) -> OpenApiRouter {
    let mut router = OpenApiRouter::new()
        .routes(routes!(rooms::create_room, rooms::list_rooms))
        .routes(routes!(rooms::get_room))
        .routes(routes!(rooms::join))
        .routes(routes!(rooms::leave))
        .routes(routes!(rooms::add_member, rooms::list_members))
        .routes(routes!(rooms::update_member, rooms::kick))
        .routes(routes!(rooms::ban))
        .routes(routes!(rooms::direct_room))
        .routes(routes!(messages::history, messages::send))
        .routes(routes!(messages::edit, messages::delete))
        .routes(routes!(messages::react))
        .routes(routes!(messages::unreact))
        .routes(routes!(messages::mark_read))
        .routes(routes!(messages::unread))
        .with_state(chat);
    basalt_platform::http::docs::document_errors(
        router.get_openapi_mut(),
        &basalt_platform::http::docs::PROBLEM_ERRORS,
    );
    router
}
