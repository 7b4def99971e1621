//! The chat service: every rule of rooms, members, messages and read state,
//! whatever protocol asks. A REST handler, a GraphQL resolver or a socket
//! frame parses input, calls one method here and renders the result.
//!
//! - [`access`]: who may read, send to and moderate a room;
//! - [`rooms`]: creating, listing, joining and leaving rooms, direct rooms;
//! - [`members`]: adding, inviting, roles, muting, kicking and banning;
//! - [`messages`]: history, sending (offsets, idempotency, mentions),
//!   editing, deleting, reactions;
//! - [`reads`]: read positions, unread and mention counts;
//! - [`presence`]: online and away across nodes, typing notices.
//!
//! Every change is published after it commits ([`crate::live`]).

pub mod access;
pub mod members;
pub mod messages;
pub mod presence;
pub mod reads;
pub mod rooms;

use std::collections::HashMap;
use std::sync::Arc;

use basalt_identity::service::IdentityService;
use basalt_platform::Db;
use basalt_platform::error::{ErrorKind, Failure, FieldError};
use basalt_platform::presence::Presence;
use basalt_platform::ratelimit::{Quota, RateLimiter};
use uuid::Uuid;

use crate::config::ChatConfig;
use crate::live::Live;
use crate::model::ChatUser;

/// The chat's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Chat {
    /// The database.
    pub db: Db,
    /// Accounts: members, authors, mentions.
    pub identity: IdentityService,
    /// The `[chat]` section.
    pub config: Arc<ChatConfig>,
    /// Per-user limits, across nodes.
    pub limiter: Arc<dyn RateLimiter>,
    /// Publishes changes to every node's connections.
    pub live: Live,
    /// Who is online, across nodes.
    pub presence: Arc<dyn Presence>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A 404 that names what was not found.
pub(crate) fn not_found(what: &str) -> Failure {
    Failure::new(ErrorKind::NotFound).with_detail(format!("{what} not found"))
}

/// A 403 that says why.
pub(crate) fn forbidden(why: &str) -> Failure {
    Failure::new(ErrorKind::Forbidden).with_detail(why)
}

/// A 422 about one field.
pub(crate) fn invalid(field: &str, message: &str) -> Failure {
    Failure::invalid(vec![FieldError::new(field, message)])
}

impl Chat {
    /// Accounts as the chat shows them, by id (unknown ids left out).
    pub async fn users(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, ChatUser>, Failure> {
        Ok(self
            .identity
            .users_by_ids(ids)
            .await?
            .into_iter()
            .map(|(id, u)| {
                (
                    id,
                    ChatUser {
                        id,
                        username: u.username,
                        image: u.image,
                    },
                )
            })
            .collect())
    }

    /// One account as the chat shows it.
    pub async fn user(&self, id: Uuid) -> Result<ChatUser, Failure> {
        self.users(&[id])
            .await?
            .remove(&id)
            .ok_or_else(|| not_found("user"))
    }

    /// An account by username (any case).
    pub async fn user_named(&self, username: &str) -> Result<ChatUser, Failure> {
        let u = self
            .identity
            .user_by_username(username)
            .await?
            .ok_or_else(|| not_found("user"))?;
        Ok(ChatUser {
            id: u.id,
            username: u.username,
            image: u.image,
        })
    }

    /// Counts one `what` (`send`, `typing`) of `user` against its per-minute
    /// limit, across nodes.
    pub async fn limit(&self, what: &str, user: Uuid) -> Result<(), Failure> {
        let per_minute = match what {
            "typing" => self.config.rate_limits.typing_per_minute,
            _ => self.config.rate_limits.sends_per_minute,
        };
        let decision = self
            .limiter
            .check(
                &format!("chat:{what}:{user}"),
                Quota::per_minute(per_minute),
            )
            .await;
        if decision.allowed {
            Ok(())
        } else {
            Err(Failure::rate_limited(decision))
        }
    }
}
