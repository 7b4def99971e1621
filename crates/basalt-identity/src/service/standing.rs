//! An account's standing: what every authorisation decision reads.
//!
//! An access token is a signed statement about the past ("this was user X,
//! an admin, at 10:02"). Trusting its claims would let rights outlive a
//! demotion, a deletion or "sign out everywhere" for the token's whole
//! lifetime. So every authenticated request reads the account's *current*
//! role and token generation instead, and a token whose generation is older
//! than the account's is refused.
//!
//! That lookup is on the path of every request, so it goes through the
//! cache port, invalidated by every change of the standing, on every node
//! (the Redis adapter shares the generation). The port invalidates whole
//! namespaces and remembers a generation for each, so accounts share 256
//! namespaces: a change re-reads 1/256 of the cached standings, and the
//! adapters keep 256 generations, not one per account ever changed.

use std::time::Duration;

use basalt_platform::cache;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::IdentityService;
use crate::error::IdentityError;
use crate::model::Role;
use crate::store::users;

/// How long a standing stays cached. Invalidation keeps entries exact; the
/// lifetime only bounds memory for accounts that stop calling.
const STANDING_TTL: Duration = Duration::from_secs(600);

/// The current role and token generation of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// The role right now (not the one a token was issued with).
    pub role: Role,
    /// Access tokens of an older generation are refused.
    pub token_generation: i64,
}

/// The account's bucket: the last byte of its id, random in UUIDv7.
fn namespace(user_id: Uuid) -> String {
    format!("identity.standing.{:02x}", user_id.as_bytes()[15])
}

impl IdentityService {
    /// The account's standing, `None` when it no longer exists. Cached until
    /// the next change through [`Self::standing_changed`].
    pub async fn standing(&self, user_id: Uuid) -> Result<Option<Standing>, IdentityError> {
        let bytes = cache::cached(
            &*self.inner.cache,
            &self.inner.flights,
            &namespace(user_id),
            &user_id.to_string(),
            STANDING_TTL,
            async {
                let standing = users::standing(&self.inner.db, user_id).await?.map(
                    |(role, token_generation)| Standing {
                        role,
                        token_generation,
                    },
                );
                serde_json::to_vec(&standing)
                    .map_err(|e| IdentityError::Internal(anyhow::anyhow!("{e}")))
            },
        )
        .await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            IdentityError::Internal(anyhow::anyhow!("a cached standing is corrupt: {e}"))
        })
    }

    /// Forgets the cached standing on every node; call after the change is
    /// committed (role, deletion, token generation).
    pub(crate) async fn standing_changed(&self, user_id: Uuid) {
        self.inner.cache.invalidate(&namespace(user_id)).await;
    }

    /// Refuses every access token issued to the account so far.
    pub(crate) async fn revoke_access_tokens(&self, user_id: Uuid) -> Result<(), IdentityError> {
        users::bump_token_generation(&self.inner.db, user_id).await?;
        self.standing_changed(user_id).await;
        Ok(())
    }
}
