//! Delivery by offset, the one rule every live reader of a room follows
//! (the socket, [`crate::ws`], and the GraphQL subscription,
//! [`Chat::follow_room`]): a message below the next expected offset was
//! delivered already and is dropped; the next one is delivered; one beyond
//! it means a gap, filled from the database before anything else. So a
//! reader delivers every message after its start exactly once and in
//! order, whatever the broadcast lost or reordered.

use std::collections::VecDeque;
use std::time::Duration;

use basalt_platform::broadcast::{Delivery, Subscription};
use basalt_platform::error::Failure;
use futures_util::Stream;
use uuid::Uuid;

use crate::frames;
use crate::live::{self, Envelope};
use crate::model::Message;
use crate::service::{Chat, invalid};

/// Messages per database read while catching up.
pub const CATCH_UP_PAGE: i64 = 200;
/// How often a follower compares the room's newest offset with its own
/// (to deliver a message whose publish was lost and that no newer message
/// follows): the socket's hub sweeps as often.
pub const HEADS_SWEEP: Duration = Duration::from_secs(2);

/// What to do with a published message, by its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The next one: deliver it (the cursor moved past it).
    Deliver,
    /// Delivered already: drop it.
    Skip,
    /// Messages before it are missing: catch up from the database, which
    /// holds them and this one (it committed before it was published).
    Gap,
}

/// A reader's position in one room: the next offset it delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomCursor {
    next: i64,
}

impl RoomCursor {
    /// A reader that has delivered everything up to `offset`.
    pub fn after(offset: i64) -> Self {
        Self { next: offset + 1 }
    }

    /// The next offset to deliver.
    pub fn next(&self) -> i64 {
        self.next
    }

    /// The newest offset delivered (where a catch-up reads after).
    pub fn delivered(&self) -> i64 {
        self.next - 1
    }

    /// Decides what to do with the message at `offset`, moving past it when
    /// it is delivered.
    pub fn offer(&mut self, offset: i64) -> Step {
        match offset.cmp(&self.next) {
            std::cmp::Ordering::Less => Step::Skip,
            std::cmp::Ordering::Equal => {
                self.next += 1;
                Step::Deliver
            }
            std::cmp::Ordering::Greater => Step::Gap,
        }
    }

    /// Moves past `offset`, a message read from the database (in order).
    pub fn caught_up(&mut self, offset: i64) {
        self.next = self.next.max(offset + 1);
    }
}

/// One follower of a room: its subscriptions, position and what it read
/// from the database but has not handed out yet.
struct Follower {
    chat: Chat,
    room: Uuid,
    user: Uuid,
    messages: Subscription,
    mine: Subscription,
    cursor: RoomCursor,
    ready: VecDeque<Message>,
    /// The last catch-up read a full page: more may follow it.
    behind: bool,
    tick: tokio::time::Interval,
}

impl Follower {
    /// Reads what follows the cursor from the database, one page; a failure
    /// is left for the next gap or tick to retry.
    async fn catch_up(&mut self) {
        match self
            .chat
            .messages_after(self.room, self.cursor.delivered(), CATCH_UP_PAGE)
            .await
        {
            Ok(page) => {
                self.behind = page.len() as i64 == CATCH_UP_PAGE;
                for message in page {
                    self.cursor.caught_up(message.offset);
                    self.ready.push_back(message);
                }
            }
            Err(failure) => {
                // Retried at the next gap or tick, not at once.
                self.behind = false;
                failure.log();
            }
        }
    }

    /// Catches up if the database is ahead of the cursor.
    async fn sweep(&mut self) {
        match self.chat.heads(&[self.room]).await {
            Ok(heads)
                if heads
                    .get(&self.room)
                    .is_some_and(|h| *h >= self.cursor.next()) =>
            {
                self.catch_up().await;
            }
            Ok(_) => {}
            Err(failure) => failure.log(),
        }
    }

    /// One published payload of the room's topic.
    async fn on_room(&mut self, bytes: &bytes::Bytes) {
        let Some(envelope) = Envelope::decode(bytes) else {
            return;
        };
        // Events without an offset (typing, edits, reactions) are not
        // messages added.
        let Some(offset) = envelope.offset else {
            return;
        };
        match self.cursor.offer(offset) {
            Step::Skip => {}
            Step::Deliver => match frames::decode_message(&envelope.frame) {
                Some(message) => self.ready.push_back(message),
                None => {
                    // Unreadable: read it (and what follows) from the database.
                    self.cursor = RoomCursor::after(offset - 1);
                    self.catch_up().await;
                }
            },
            Step::Gap => self.catch_up().await,
        }
    }

    /// The next message, in offset order; `None` once the caller lost the
    /// room (kicked, banned, left a private room) or the port shut down.
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Some(message);
            }
            // Catching up pages at the reader's pace.
            if self.behind {
                self.catch_up().await;
                continue;
            }
            tokio::select! {
                delivery = self.messages.recv() => match delivery? {
                    Delivery::Message(bytes) => self.on_room(&bytes).await,
                    Delivery::Gap => self.catch_up().await,
                },
                delivery = self.mine.recv() => match delivery? {
                    Delivery::Message(bytes) => {
                        let removed = Envelope::decode(&bytes).and_then(|e| e.removed_from);
                        if removed == Some(self.room) {
                            return None;
                        }
                    }
                    // The removal may have been lost: ask.
                    Delivery::Gap => {
                        let access = self.chat.access(self.user, self.room).await;
                        if access.and_then(|a| a.require_read()).is_err() {
                            return None;
                        }
                    }
                },
                _ = self.tick.tick() => self.sweep().await,
            }
        }
    }
}

impl Chat {
    /// The messages added to `room` for `user` to read, in offset order and
    /// each once: those after `after` first (at most
    /// `recovery_max_messages` back), then each new one. Subscribes before
    /// it reads the database, so that nothing falls between the two. Ends
    /// when the user may no longer read the room.
    pub async fn follow_room(
        &self,
        user: Uuid,
        room: Uuid,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = Message> + Send + use<>, Failure> {
        let access = self.access(user, room).await?;
        access.require_read()?;
        let head = access.room.last_offset;
        let start = match after {
            None => head,
            Some(offset) if !(0..=head).contains(&offset) => {
                return Err(invalid(
                    "after",
                    "must be an offset of the room (0 to its newest)",
                ));
            }
            Some(offset) if head - offset > self.config.recovery_max_messages => {
                return Err(invalid(
                    "after",
                    "is too far back; page the history with chatMessages",
                ));
            }
            Some(offset) => offset,
        };
        let mut messages = self.live.broadcast().subscribe(&live::room_topic(room));
        let mut mine = self.live.broadcast().subscribe(&live::user_topic(user));
        // With Redis, wait (bounded) until the subscriptions are in place:
        // what commits from then on is published to them, what committed
        // before is read below.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            messages.ready().await;
            mine.ready().await;
        })
        .await;
        let mut tick = tokio::time::interval(HEADS_SWEEP);
        tick.reset();
        let mut follower = Follower {
            chat: self.clone(),
            room,
            user,
            messages,
            mine,
            cursor: RoomCursor::after(start),
            ready: VecDeque::new(),
            behind: false,
            tick,
        };
        follower.catch_up().await;
        Ok(futures_util::stream::unfold(
            follower,
            |mut follower| async move {
                let message = follower.next().await?;
                Some((message, follower))
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{RoomCursor, Step};

    #[test]
    fn a_cursor_delivers_the_next_offset_skips_older_ones_and_sees_gaps() {
        let mut cursor = RoomCursor::after(3);
        assert_eq!(cursor.offer(3), Step::Skip);
        assert_eq!(cursor.offer(4), Step::Deliver);
        assert_eq!(cursor.offer(4), Step::Skip, "each offset once");
        assert_eq!(cursor.offer(6), Step::Gap);
        assert_eq!(cursor.next(), 5, "a gap does not move the cursor");
        cursor.caught_up(5);
        cursor.caught_up(6);
        assert_eq!(cursor.offer(6), Step::Skip);
        assert_eq!(cursor.offer(7), Step::Deliver);
        cursor.caught_up(2);
        assert_eq!(cursor.delivered(), 7, "catching up never moves back");
    }
}
