//! Messages: history pages, sending (offsets, idempotency, mentions),
//! editing, deleting, reactions.

use std::collections::HashMap;

use basalt_platform::error::Failure;
use chrono::Utc;
use uuid::Uuid;

use super::{Chat, forbidden, invalid, not_found};
use crate::frames;
use crate::model::{Message, MessagesBody, ReactionCount};
use crate::store::messages::{self, MessageRow, NewMessage};
use crate::store::rooms;

/// The longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// The most people one message notifies.
const MAX_MENTIONS: usize = 10;
/// History pages: default and largest size.
pub const DEFAULT_PAGE: i64 = 50;
/// The largest history page.
pub const MAX_PAGE: i64 = 200;

/// Which page of history (`GET …/messages?after=&before=&limit=`).
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryPage {
    /// Only offsets above this; the page starts here when `before` is absent.
    pub after: Option<i64>,
    /// Only offsets below this; the page ends here.
    pub before: Option<i64>,
    /// Page size (default 50, at most 200).
    pub limit: Option<i64>,
}

/// A message to post.
#[derive(Debug, Clone, Default)]
pub struct Post {
    /// Markdown.
    pub body: String,
    /// The message replied to (same room).
    pub reply_to: Option<i64>,
    /// Idempotency key: the same nonce again returns the first message.
    pub nonce: Option<String>,
}

fn message_body(body: &str) -> Result<&str, Failure> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return Err(invalid("body", "can't be blank"));
    }
    if trimmed.chars().count() > MAX_BODY_CHARS {
        return Err(invalid("body", "is too long (at most 4000 characters)"));
    }
    Ok(trimmed)
}

fn emoji(emoji: &str) -> Result<&str, Failure> {
    let count = emoji.chars().count();
    if count == 0
        || count > 8
        || emoji.len() > 32
        || emoji.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("emoji", "must be one emoji (at most 8 characters)"));
    }
    Ok(emoji)
}

/// The usernames `@mentioned` in a body, lower-cased, first ones first.
pub fn mentioned_names(body: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let at_word_start = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '@');
        if chars[i] == '@' && at_word_start {
            let word: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect();
            i += 1 + word.chars().count();
            let name = word.trim_end_matches('.').to_lowercase();
            if (3..=32).contains(&name.chars().count()) && !names.contains(&name) {
                names.push(name);
                if names.len() == MAX_MENTIONS {
                    break;
                }
            }
        } else {
            i += 1;
        }
    }
    names
}

impl Chat {
    /// Stored rows as messages: authors, mentions and reactions in one call
    /// and two statements per page.
    pub async fn render(&self, rows: Vec<MessageRow>) -> Result<Vec<Message>, Failure> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let (mut reactions, mut mentions) = messages::extras(&self.db, &ids).await?;
        let mut people: Vec<Uuid> = rows.iter().map(|r| r.author_id).collect();
        people.extend(mentions.values().flatten());
        let users = self.users(&people).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let author = users.get(&row.author_id)?.clone();
                let mentioned = mentions
                    .remove(&row.id)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|u| users.get(u).map(|u| u.username.clone()))
                    .collect();
                let reactions = reactions
                    .remove(&row.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(emoji, count)| ReactionCount { emoji, count })
                    .collect();
                Some(Message {
                    id: row.id,
                    room: row.room_id,
                    offset: row.room_offset,
                    author,
                    body: row.body,
                    body_html: row.body_html,
                    reply_to: row.reply_to,
                    created_at: row.created_at,
                    edited_at: row.edited_at,
                    deleted: row.deleted_at.is_some(),
                    reactions,
                    mentions: mentioned,
                })
            })
            .collect())
    }

    /// A page of a room's history, oldest first.
    pub async fn history(
        &self,
        user: Uuid,
        room: Uuid,
        page: HistoryPage,
    ) -> Result<MessagesBody, Failure> {
        let access = self.access(user, room).await?;
        access.require_read()?;
        let limit = page.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid("limit", "must be between 1 and 200"));
        }
        if page.after.is_some_and(|a| a < 0) || page.before.is_some_and(|b| b < 1) {
            return Err(invalid("after", "offsets start at 1"));
        }
        let after = page.after.unwrap_or(0);
        let (mut rows, has_more) = match page.before {
            None if page.after.is_some() => {
                let mut rows = messages::after(&self.db, room, after, limit + 1).await?;
                let more = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                (rows, more)
            }
            before => {
                let before = before.unwrap_or(i64::MAX);
                let mut rows = messages::before(&self.db, room, after, before, limit + 1).await?;
                let more = rows.len() as i64 > limit;
                if more {
                    rows.remove(0);
                }
                (rows, more)
            }
        };
        rows.truncate(limit as usize);
        Ok(MessagesBody {
            messages: self.render(rows).await?,
            epoch: access.room.epoch,
            last_offset: access.room.last_offset,
            has_more,
        })
    }

    /// Up to `limit` messages after `offset`, for a connection catching up
    /// (its access was checked when it subscribed).
    pub async fn messages_after(
        &self,
        room: Uuid,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Message>, Failure> {
        let rows = messages::after(&self.db, room, offset, limit).await?;
        self.render(rows).await
    }

    /// The newest offset of each of `rooms`.
    pub async fn heads(&self, rooms: &[Uuid]) -> Result<HashMap<Uuid, i64>, Failure> {
        Ok(rooms::heads(&self.db, rooms).await?.into_iter().collect())
    }

    /// Posts a message, at the room's next offset, and publishes it. With a
    /// nonce the author used in the room before, returns that message
    /// instead (nothing is posted or published again).
    pub async fn send(&self, user: Uuid, room: Uuid, post: Post) -> Result<Message, Failure> {
        let body = message_body(&post.body)?;
        if post
            .nonce
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.len() > 64)
        {
            return Err(invalid("nonce", "must be 1 to 64 bytes"));
        }
        self.limit("send", user).await?;
        let access = self.access(user, room).await?;
        access.require_send()?;
        if let Some(parent) = post.reply_to
            && messages::message(&self.db, room, parent).await?.is_none()
        {
            return Err(invalid("reply_to", "is not a message of this room"));
        }
        let mut mentioned = Vec::new();
        for name in mentioned_names(body) {
            let Ok(person) = self.user_named(&name).await else {
                continue;
            };
            let member = rooms::member(&self.db, room, person.id).await?;
            if person.id != user && member.is_some_and(|m| m.state == "joined") {
                mentioned.push(person);
            }
        }
        let body_html = basalt_markdown::markdown_to_safe_html(body);
        let mention_ids: Vec<Uuid> = mentioned.iter().map(|p| p.id).collect();
        let now = Utc::now();
        let sent = messages::send(
            &self.db,
            &NewMessage {
                room,
                author: user,
                body,
                body_html: &body_html,
                reply_to: post.reply_to,
                nonce: post.nonce.as_deref(),
                mentions: &mention_ids,
                now,
            },
        )
        .await?;
        if !sent.new {
            return self.message(room, sent.id).await;
        }
        let message = Message {
            id: sent.id,
            room,
            offset: sent.offset,
            author: self.user(user).await?,
            body: body.to_owned(),
            body_html,
            reply_to: post.reply_to,
            created_at: now,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            mentions: mentioned.iter().map(|p| p.username.clone()).collect(),
        };
        self.live
            .message(
                room,
                sent.offset,
                &frames::message(&message, &access.room.epoch),
            )
            .await;
        for person in &mentioned {
            self.live
                .user_event(person.id, &frames::mention(&message))
                .await;
        }
        // The author has read up to their own message, on every device.
        self.live
            .user_event(user, &frames::read(room, sent.offset, 0, 0))
            .await;
        Ok(message)
    }

    async fn message(&self, room: Uuid, id: i64) -> Result<Message, Failure> {
        let row = messages::message(&self.db, room, id)
            .await?
            .ok_or_else(|| not_found("message"))?;
        self.render(vec![row])
            .await?
            .pop()
            .ok_or_else(|| not_found("message"))
    }

    /// Edits a message (its author's, not deleted), marking it edited.
    /// Mentions stay those of the first version.
    pub async fn edit(
        &self,
        user: Uuid,
        room: Uuid,
        id: i64,
        body: &str,
    ) -> Result<Message, Failure> {
        let body = message_body(body)?;
        let access = self.access(user, room).await?;
        access.require_send()?;
        let row = messages::message(&self.db, room, id)
            .await?
            .ok_or_else(|| not_found("message"))?;
        if row.author_id != user {
            return Err(forbidden("only its author may edit a message"));
        }
        if row.deleted_at.is_some() {
            return Err(not_found("message"));
        }
        let body_html = basalt_markdown::markdown_to_safe_html(body);
        messages::edit(&self.db, id, body, &body_html, Utc::now()).await?;
        let message = self.message(room, id).await?;
        self.live.room_event(room, &frames::edited(&message)).await;
        Ok(message)
    }

    /// Deletes a message (its author, or a moderator), leaving a tombstone.
    pub async fn delete(&self, user: Uuid, room: Uuid, id: i64) -> Result<(), Failure> {
        let access = self.access(user, room).await?;
        access.require_joined()?;
        let row = messages::message(&self.db, room, id)
            .await?
            .ok_or_else(|| not_found("message"))?;
        if row.author_id != user && access.require_moderator().is_err() {
            return Err(forbidden(
                "only its author or a moderator may delete a message",
            ));
        }
        if row.deleted_at.is_some() {
            return Ok(());
        }
        messages::delete(&self.db, id, Utc::now()).await?;
        self.live
            .room_event(room, &frames::deleted(room, id, row.room_offset))
            .await;
        Ok(())
    }

    /// Adds (`add`) or removes the caller's reaction to a message; returns
    /// the message as it now is.
    pub async fn react(
        &self,
        user: Uuid,
        room: Uuid,
        id: i64,
        emoji_text: &str,
        add: bool,
    ) -> Result<Message, Failure> {
        let emoji = emoji(emoji_text)?;
        let access = self.access(user, room).await?;
        access.require_send()?;
        let row = messages::message(&self.db, room, id)
            .await?
            .ok_or_else(|| not_found("message"))?;
        if row.deleted_at.is_some() {
            return Err(not_found("message"));
        }
        let changed = messages::react(&self.db, id, user, emoji, add, Utc::now()).await?;
        if changed {
            let me = self.user(user).await?;
            self.live
                .room_event(room, &frames::reaction(room, id, emoji, &me, add))
                .await;
        }
        self.message(room, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::mentioned_names;

    #[test]
    fn mentions_are_words_starting_with_at() {
        assert_eq!(
            mentioned_names("hi @Ann and @bob.smith. mail me@example.com, @ab @ann again"),
            vec!["ann", "bob.smith"]
        );
        assert!(mentioned_names("no mentions here").is_empty());
        let many: String = (0..20).map(|i| format!("@user{i} ")).collect();
        assert_eq!(mentioned_names(&many).len(), 10);
    }
}
