//! Presence and typing: ephemeral, cluster-wide, never stored in the
//! database. A user is online while one of their connections heartbeats
//! within `chat.presence_ttl_secs` (the platform's presence port keeps the
//! TTLs, in process or in Redis); changes are announced to the rooms they
//! have joined.

use std::time::Duration;

use basalt_platform::error::Failure;
use uuid::Uuid;

use super::{Chat, invalid};
use crate::frames;
use crate::store::rooms;

/// The most rooms a presence change is announced to.
const ANNOUNCE_ROOMS: i64 = 200;

impl Chat {
    /// The presence TTL.
    pub fn presence_ttl(&self) -> Duration {
        Duration::from_secs(self.config.presence_ttl_secs)
    }

    /// Records that `user` is connected with `status` (`online` or `away`),
    /// announcing a change.
    pub async fn heartbeat(&self, user: Uuid, status: &str) -> Result<(), Failure> {
        if !matches!(status, "online" | "away") {
            return Err(invalid("status", "must be online or away"));
        }
        let before = self
            .presence
            .heartbeat(&user.to_string(), status, self.presence_ttl())
            .await
            .map_err(|e| Failure::internal(anyhow::anyhow!("presence: {e}")))?;
        if before.as_deref() != Some(status) {
            self.announce_presence(user, status).await;
        }
        Ok(())
    }

    /// Tells the rooms `user` has joined their new status.
    pub async fn announce_presence(&self, user: Uuid, status: &str) {
        let (Ok(person), Ok(rooms)) = (
            self.user(user).await,
            rooms::joined_room_ids(&self.db, user, ANNOUNCE_ROOMS).await,
        ) else {
            return;
        };
        let frame = frames::presence(&person, status);
        for room in rooms {
            self.live.room_event(room, &frame).await;
        }
    }

    /// Announces `offline` for the users whose presence ran out (each
    /// exactly once across the cluster: the port hands each expiry to one
    /// caller).
    pub async fn sweep_presence(&self) {
        match self.presence.claim_expired().await {
            Ok(expired) => {
                for key in expired {
                    if let Ok(user) = key.parse::<Uuid>() {
                        self.announce_presence(user, "offline").await;
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "presence sweep skipped"),
        }
    }

    /// Tells a room `user` is typing (rate limited; members only).
    pub async fn typing(&self, user: Uuid, room: Uuid) -> Result<(), Failure> {
        self.limit("typing", user).await?;
        let access = self.access(user, room).await?;
        access.require_send()?;
        let person = self.user(user).await?;
        self.live
            .room_event(room, &frames::typing(room, &person))
            .await;
        Ok(())
    }
}
