//! The RabbitMQ fan-out (`events.fanout`, on nodes that serve the API): a
//! queue of this node's own, bound to every kind on the live exchange,
//! consumed without acknowledgements into the node's [`LiveHub`].
//!
//! The queue is server-named, exclusive and auto-deleted: it lives as long
//! as the connection, so a node that dies leaves nothing behind. It is
//! capped at [`QUEUE_CAP`] messages, dropping the oldest, so that a node that
//! stops reading costs the broker little; best effort, like the hub itself.

use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use tokio_util::sync::CancellationToken;

use super::Event;
use super::live::LiveHub;
use super::rabbitmq::{connect, declare_topic_exchange, live_exchange};
use crate::config::AmqpUrl;

/// Messages the broker keeps for a node that does not read them fast enough.
const QUEUE_CAP: i64 = 10_000;
/// First and longest pause before reconnecting.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// Feeds `hub` from the broker until `stop`, reconnecting with back-off;
/// then ends the hub's listeners.
pub(super) async fn fan_out(url: AmqpUrl, prefix: String, hub: LiveHub, stop: CancellationToken) {
    let mut delay = FIRST_RETRY;
    while !stop.is_cancelled() {
        let mut consumed = false;
        let outcome = tokio::select! {
            outcome = consume(&url, &prefix, &hub, &mut consumed) => outcome,
            () = stop.cancelled() => break,
        };
        hub.set_hearing(false);
        if let Err(error) = outcome {
            tracing::debug!(
                error = format!("{error:#}"),
                "live-event fan-out reconnecting"
            );
        }
        if consumed {
            delay = FIRST_RETRY;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => break,
        }
        delay = (delay * 2).min(LONGEST_RETRY);
    }
    hub.set_hearing(false);
    hub.end();
}

/// Consumes until the connection fails; sets `consumed` once it does.
async fn consume(
    url: &AmqpUrl,
    prefix: &str,
    hub: &LiveHub,
    consumed: &mut bool,
) -> anyhow::Result<()> {
    let conn = connect(url).await?;
    let channel = conn.create_channel().await?;
    let exchange = live_exchange(prefix);
    declare_topic_exchange(&channel, exchange.clone()).await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(QUEUE_CAP));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("drop-head".into()),
    );
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut deliveries = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    *consumed = true;
    hub.set_hearing(true);
    while let Some(delivery) = deliveries.next().await {
        match serde_json::from_slice::<Event>(&delivery?.data) {
            Ok(event) => hub.send(&event),
            Err(error) => tracing::warn!(%error, "live-event fan-out: not an event, dropped"),
        }
    }
    anyhow::bail!("the fan-out consumer was cancelled")
}
