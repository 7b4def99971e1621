//! Profiles and following (not yourself).

use basalt_platform::events::Event;
use uuid::Uuid;

use super::Blog;
use crate::error::BlogError;
use crate::events::{FOLLOWED, Followed};
use crate::model::Profile;
use crate::store;

impl Blog {
    /// The profile of `username` as `viewer` sees it, or 404.
    pub async fn get_profile(
        &self,
        viewer: Option<Uuid>,
        username: &str,
    ) -> Result<Profile, BlogError> {
        Ok(self.profile(viewer, username).await?.1)
    }

    /// `who` follows `username` (idempotent); following yourself is a 422.
    pub async fn follow(&self, who: Uuid, username: &str) -> Result<Profile, BlogError> {
        let (id, mut profile) = self.profile(Some(who), username).await?;
        if id == who {
            return Err(BlogError::invalid("profile", "you cannot follow yourself"));
        }
        let followed = Event::new(
            FOLLOWED,
            &Followed {
                follower_id: who,
                followee_id: id,
            },
        );
        if store::follow(&self.db, who, id, chrono::Utc::now(), &followed).await? {
            self.events.wake();
            // The reader's cached feed total counts the authors they follow.
            self.invalidate().await;
        }
        profile.following = true;
        Ok(profile)
    }

    /// `who` no longer follows `username` (idempotent).
    pub async fn unfollow(&self, who: Uuid, username: &str) -> Result<Profile, BlogError> {
        let (id, mut profile) = self.profile(Some(who), username).await?;
        if store::unfollow(&self.db, who, id).await? {
            self.invalidate().await;
        }
        profile.following = false;
        Ok(profile)
    }
}
