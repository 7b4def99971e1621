//! Members: listing, adding or inviting, roles and muting, kicking, banning.

use basalt_platform::error::Failure;
use chrono::Utc;
use uuid::Uuid;

use super::access::RoomAccess;
use super::{Chat, forbidden, invalid, not_found};
use crate::model::{Member, MemberRole, MemberState, RoomKind};
use crate::store::rooms::{self, MemberRow};

/// A change to a member (`PUT …/members/{username}`); absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct MemberChange {
    /// `member` or `moderator` (the owner's decision).
    pub role: Option<MemberRole>,
    /// Mute or unmute (a moderator's).
    pub muted: Option<bool>,
}

/// Fails unless the actor outranks the target (owner > moderator > member).
fn outranks(actor: MemberRole, target: &MemberRow) -> Result<(), Failure> {
    let target = MemberRole::parse(&target.role).unwrap_or(MemberRole::Member);
    if actor > target {
        Ok(())
    } else {
        Err(forbidden("you may act only on members of a lower role"))
    }
}

impl Chat {
    /// A room's members with their presence. Moderators also see
    /// invitations and bans.
    pub async fn members(&self, user: Uuid, room: Uuid) -> Result<Vec<Member>, Failure> {
        let access = self.access(user, room).await?;
        access.require_read()?;
        let moderator = access.require_moderator().is_ok();
        let rows: Vec<MemberRow> = rooms::members(&self.db, room)
            .await?
            .into_iter()
            .filter(|m| moderator || m.state == MemberState::Joined.as_str())
            .collect();
        let ids: Vec<Uuid> = rows.iter().map(|m| m.user_id).collect();
        let users = self.users(&ids).await?;
        let statuses = self.presence_of(&ids).await;
        let mut members: Vec<Member> = rows
            .into_iter()
            .zip(statuses)
            .filter_map(|(row, presence)| {
                Some(Member {
                    user: users.get(&row.user_id)?.clone(),
                    role: MemberRole::parse(&row.role)?,
                    state: MemberState::parse(&row.state)?,
                    muted: row.muted,
                    presence,
                })
            })
            .collect();
        members.sort_by(|a, b| {
            b.role.cmp(&a.role).then_with(|| {
                a.user
                    .username
                    .to_lowercase()
                    .cmp(&b.user.username.to_lowercase())
            })
        });
        Ok(members)
    }

    async fn member_view(&self, room: Uuid, target: Uuid) -> Result<Member, Failure> {
        let row = rooms::member(&self.db, room, target)
            .await?
            .ok_or_else(|| not_found("member"))?;
        let presence = self.presence_of(&[target]).await.pop().unwrap_or_default();
        Ok(Member {
            user: self.user(target).await?,
            role: MemberRole::parse(&row.role).unwrap_or(MemberRole::Member),
            state: MemberState::parse(&row.state).unwrap_or(MemberState::Joined),
            muted: row.muted,
            presence,
        })
    }

    /// Adds `username` to the room, or invites them to an invite-only room.
    /// Any member may add people to a public room; moderators to the others.
    pub async fn add_member(
        &self,
        actor: Uuid,
        room: Uuid,
        username: &str,
    ) -> Result<Member, Failure> {
        let access = self.access(actor, room).await?;
        match access.room.kind {
            RoomKind::Direct => return Err(forbidden("direct rooms have two members")),
            RoomKind::Public => access.require_joined()?,
            RoomKind::Private | RoomKind::InviteOnly => {
                access.require_moderator()?;
            }
        }
        let target = self.user_named(username).await?;
        let state = match rooms::member(&self.db, room, target.id).await? {
            Some(row) if row.state == MemberState::Banned.as_str() => {
                return Err(forbidden(
                    "this user is banned; lift the ban (DELETE the member) first",
                ));
            }
            Some(row) if row.state == MemberState::Joined.as_str() => MemberState::Joined,
            _ if access.room.kind == RoomKind::InviteOnly => MemberState::Invited,
            _ => MemberState::Joined,
        };
        rooms::put_member(
            &self.db,
            room,
            target.id,
            MemberRole::Member.as_str(),
            state.as_str(),
            Utc::now(),
        )
        .await?;
        self.member_view(room, target.id).await
    }

    /// Changes a member's role (the owner's call) or mute flag (a
    /// moderator's, over members of a lower role).
    pub async fn update_member(
        &self,
        actor: Uuid,
        room: Uuid,
        username: &str,
        change: MemberChange,
    ) -> Result<Member, Failure> {
        let access = self.access(actor, room).await?;
        let actor_role = access.require_moderator()?;
        let target = self.user_named(username).await?;
        let row = self.joined_member(&access, target.id).await?;
        outranks(actor_role, &row)?;
        let mut role = MemberRole::parse(&row.role).unwrap_or(MemberRole::Member);
        if let Some(new_role) = change.role {
            if new_role == MemberRole::Owner {
                return Err(invalid(
                    "role",
                    "must be member or moderator (ownership passes when the owner leaves)",
                ));
            }
            if new_role != role && actor_role != MemberRole::Owner {
                return Err(forbidden("only the owner changes roles"));
            }
            role = new_role;
        }
        let muted = change.muted.unwrap_or(row.muted);
        rooms::update_member(&self.db, room, target.id, role.as_str(), muted).await?;
        self.member_view(room, target.id).await
    }

    async fn joined_member(&self, access: &RoomAccess, user: Uuid) -> Result<MemberRow, Failure> {
        rooms::member(&self.db, access.room.id, user)
            .await?
            .filter(|m| m.state == MemberState::Joined.as_str())
            .ok_or_else(|| not_found("member"))
    }

    /// Removes `username`'s row from the room: kicks a member, withdraws an
    /// invitation or lifts a ban (moderators, over lower roles).
    pub async fn kick(&self, actor: Uuid, room: Uuid, username: &str) -> Result<(), Failure> {
        let access = self.access(actor, room).await?;
        let actor_role = access.require_moderator()?;
        let target = self.user_named(username).await?;
        let row = rooms::member(&self.db, room, target.id)
            .await?
            .ok_or_else(|| not_found("member"))?;
        outranks(actor_role, &row)?;
        rooms::delete_member(&self.db, room, target.id).await?;
        if access.room.kind != RoomKind::Public {
            self.live.removed(target.id, room).await;
        }
        Ok(())
    }

    /// Bans `username` from the room: they leave it and may not read, join
    /// or be added until the ban is lifted.
    pub async fn ban(&self, actor: Uuid, room: Uuid, username: &str) -> Result<Member, Failure> {
        let access = self.access(actor, room).await?;
        let actor_role = access.require_moderator()?;
        let target = self.user_named(username).await?;
        if let Some(row) = rooms::member(&self.db, room, target.id).await? {
            outranks(actor_role, &row)?;
        }
        rooms::put_member(
            &self.db,
            room,
            target.id,
            MemberRole::Member.as_str(),
            MemberState::Banned.as_str(),
            Utc::now(),
        )
        .await?;
        self.live.removed(target.id, room).await;
        self.member_view(room, target.id).await
    }

    /// `online`, `away` or `offline` for each of `users`; `offline` when the
    /// presence store cannot tell.
    pub async fn presence_of(&self, users: &[Uuid]) -> Vec<String> {
        let keys: Vec<String> = users.iter().map(Uuid::to_string).collect();
        match self.presence.statuses(&keys).await {
            Ok(statuses) => statuses
                .into_iter()
                .map(|s| s.unwrap_or_else(|| "offline".to_owned()))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "presence unavailable");
                vec!["offline".to_owned(); users.len()]
            }
        }
    }
}
