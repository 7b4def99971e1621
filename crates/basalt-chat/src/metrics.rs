//! The chat's metrics: open sockets, frames delivered, and why sockets
//! closed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of `basalt_chat_socket_closes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// `client`, `shutdown`, `slow_consumer`, `unauthenticated`,
    /// `signed_out`, `error`.
    pub reason: &'static str,
}

/// The chat's metrics. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct ChatMetrics {
    /// Sockets open on this node.
    pub sockets: Gauge,
    /// Message frames written to sockets (live and caught up).
    pub delivered: Counter,
    /// Messages a socket fetched from the database to fill a gap or resume.
    pub caught_up: Counter,
    /// Sockets closed, by reason.
    pub closes: Family<CloseLabels, Counter>,
}

impl ChatMetrics {
    /// Registers the metrics (prefix `basalt_chat_`).
    pub fn register(&self, registry: &mut Registry) {
        let chat = registry.sub_registry_with_prefix("chat");
        chat.register(
            "sockets",
            "Chat WebSockets open on this node",
            self.sockets.clone(),
        );
        chat.register(
            "delivered_messages",
            "Message frames written to chat sockets",
            self.delivered.clone(),
        );
        chat.register(
            "caught_up_messages",
            "Messages chat sockets read from the database to resume or fill a gap",
            self.caught_up.clone(),
        );
        chat.register(
            "socket_closes",
            "Chat WebSockets closed, by reason",
            self.closes.clone(),
        );
    }

    /// Counts a close.
    pub fn closed(&self, reason: &'static str) {
        self.closes.get_or_create(&CloseLabels { reason }).inc();
    }
}
