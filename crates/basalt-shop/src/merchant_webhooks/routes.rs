//! The merchant webhooks' routes (admins only).

use axum::extract::State;
use axum::http::StatusCode;
use basalt_identity::auth::Admin;
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::{Json, Path};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{CreatedEndpoint, Delivery, MerchantWebhooks};

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where deliveries are POSTed: an http(s) URL on a public address.
    pub url: String,
    /// The event kinds to receive (`shop.order.paid`, …).
    pub events: Vec<String>,
}

/// `{"webhook_endpoint": …}`, with the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpointBody {
    /// The endpoint and its signing secret.
    pub webhook_endpoint: CreatedEndpoint,
}

/// `{"deliveries": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveriesBody {
    /// Newest first, each with its attempts.
    pub deliveries: Vec<Delivery>,
}

/// `{"delivery": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryBody {
    /// The delivery.
    pub delivery: Delivery,
}

/// The routes, with their state.
pub fn router(webhooks: MerchantWebhooks) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint))
        .routes(routes!(list_deliveries))
        .routes(routes!(redeliver))
        .with_state(webhooks)
}

/// Registers a webhook endpoint; the answer carries its signing secret,
/// shown this once. Deliveries are signed with `Basalt-Signature:
/// t=…,v1=…` (Stripe's scheme, keyed with the whole secret).
#[utoipa::path(post, path = "/api/shop/webhook-endpoints", tag = "shop",
    request_body = NewEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key")),
    responses((status = 201, body = CreatedEndpointBody), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn create_endpoint(
    State(webhooks): State<MerchantWebhooks>,
    Admin(admin): Admin,
    Json(body): Json<NewEndpoint>,
) -> Result<(StatusCode, Json<CreatedEndpointBody>), Failure> {
    let webhook_endpoint = webhooks
        .create_endpoint(admin.user_id, &body.url, &body.events)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpointBody { webhook_endpoint }),
    ))
}

/// An endpoint's deliveries, newest first (at most 100), each with every
/// attempt: when, how long, the receiver's status, the error.
#[utoipa::path(get, path = "/api/shop/webhook-endpoints/{id}/deliveries", tag = "shop",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DeliveriesBody), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn list_deliveries(
    State(webhooks): State<MerchantWebhooks>,
    _admin: Admin,
    Path(id): Path<Uuid>,
) -> Result<Json<DeliveriesBody>, Failure> {
    Ok(Json(DeliveriesBody {
        deliveries: webhooks.deliveries(id).await?,
    }))
}

/// Sends a delivery again: the same body, signed anew, with a new round of
/// attempts. Answers at once (202); the attempts appear in the log.
#[utoipa::path(post, path = "/api/shop/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver",
    tag = "shop",
    params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key")),
    responses((status = 202, body = DeliveryBody), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn redeliver(
    State(webhooks): State<MerchantWebhooks>,
    _admin: Admin,
    Path((id, delivery_id)): Path<(Uuid, Uuid)>,
) -> Result<(StatusCode, Json<DeliveryBody>), Failure> {
    let delivery = webhooks.redeliver(id, delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryBody { delivery })))
}
