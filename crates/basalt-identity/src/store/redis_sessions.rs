//! Browser sessions in Redis: the distributed adapter of [`SessionStore`],
//! chosen with `identity.session_store = "redis"` (needs `BASALT_REDIS_URL`).
//!
//! Layout, under the deployment's key prefix:
//! - `session:{id}`: a hash with the session as JSON (`row`), the last
//!   activity in unix ms (`seen`), the owner (`user`) and the cookie token's
//!   hash (`token`); expires at the session's absolute end;
//! - `session-token:{hex(token hash)}` → id, same expiry;
//! - `user-sessions:{user id}`: the set of the user's session ids (stale ids
//!   are dropped when listed).
//!
//! Deletion runs as one Lua script, so that a session and its token key go
//! together. Trade-off against the database store: faster lookups and no
//! write per request on the database, but sessions live only as long as
//! Redis keeps them (persistence on), and while Redis is down cookie sign-in
//! fails (tokens keep working). Hence not the default.

use basalt_platform::redis::Redis;
use chrono::{DateTime, TimeZone as _, Utc};
use futures_util::future::BoxFuture;
use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::sessions::{NewSession, SessionRow, SessionStore};

type Result<T> = std::result::Result<T, sqlx::Error>;

/// Removes one session (and its token key and set entry) if `ARGV[1]` is
/// empty or names its owner; returns 1 when it existed.
const DELETE_SCRIPT: &str = r"
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return 0 end
if ARGV[1] ~= '' and ARGV[1] ~= user then return 0 end
local token = redis.call('HGET', KEYS[1], 'token')
redis.call('DEL', KEYS[1])
if token then redis.call('DEL', ARGV[2] .. token) end
redis.call('SREM', ARGV[3] .. user, ARGV[4])
return 1
";

/// Sets `seen` only on a session that still exists (a touch racing a
/// sign-out must not bring it back).
const TOUCH_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'seen', ARGV[1])
end
return 0
";

/// The stored part of a session that never changes.
#[derive(Serialize, Deserialize)]
struct Stored {
    id: Uuid,
    user_id: Uuid,
    csrf_token: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ip: Option<String>,
    user_agent: Option<String>,
}

/// Sessions in Redis.
pub struct RedisSessionStore {
    redis: Redis,
    delete: redis::Script,
    touch: redis::Script,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore").finish_non_exhaustive()
    }
}

fn unavailable(error: redis::RedisError) -> sqlx::Error {
    // The port speaks the database's error type; an unreachable store is an
    // I/O error there too (mapped to a 500, never a silent success).
    sqlx::Error::Io(std::io::Error::other(format!(
        "session store (Redis): {error}"
    )))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RedisSessionStore {
    /// A store over `redis`.
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            delete: redis::Script::new(DELETE_SCRIPT),
            touch: redis::Script::new(TOUCH_SCRIPT),
        }
    }

    fn session_key(&self, id: Uuid) -> String {
        self.redis.key(&format!("session:{id}"))
    }

    fn token_key(&self, token_hash: &[u8]) -> String {
        self.redis
            .key(&format!("session-token:{}", hex(token_hash)))
    }

    fn user_key(&self, user_id: Uuid) -> String {
        self.redis.key(&format!("user-sessions:{user_id}"))
    }

    /// The ids in a user's session set (some may have expired).
    async fn session_ids(&self, user_id: Uuid) -> Result<Vec<Uuid>> {
        let mut conn = self.redis.connection();
        let ids: Vec<String> = conn
            .smembers(self.user_key(user_id))
            .await
            .map_err(unavailable)?;
        Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
    }

    async fn remove(&self, id: Uuid, owner: Option<Uuid>) -> Result<bool> {
        let mut conn = self.redis.connection();
        let removed: i64 = self
            .delete
            .key(self.session_key(id))
            .arg(owner.map(|u| u.to_string()).unwrap_or_default())
            .arg(self.redis.key("session-token:"))
            .arg(self.redis.key("user-sessions:"))
            .arg(id.to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(removed == 1)
    }

    /// The live session with this id, if any.
    async fn load(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<Option<SessionRow>> {
        let mut conn = self.redis.connection();
        let (row, seen): (Option<String>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.session_key(id))
            .arg("row")
            .arg("seen")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let (Some(row), Some(seen)) = (row, seen) else {
            return Ok(None);
        };
        let stored: Stored =
            serde_json::from_str(&row).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let last_seen_at = Utc
            .timestamp_millis_opt(seen)
            .single()
            .unwrap_or(stored.created_at);
        if stored.expires_at <= now || last_seen_at <= idle_since {
            return Ok(None);
        }
        Ok(Some(SessionRow {
            id: stored.id,
            user_id: stored.user_id,
            csrf_token: stored.csrf_token,
            created_at: stored.created_at,
            last_seen_at,
            expires_at: stored.expires_at,
            ip: stored.ip,
            user_agent: stored.user_agent,
        }))
    }
}

impl SessionStore for RedisSessionStore {
    fn create<'a>(&'a self, s: &'a NewSession) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let stored = Stored {
                id: s.id,
                user_id: s.user_id,
                csrf_token: s.csrf_token.clone(),
                created_at: s.created_at,
                expires_at: s.expires_at,
                ip: s.ip.clone(),
                user_agent: s.user_agent.clone(),
            };
            let row =
                serde_json::to_string(&stored).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            let expires_ms = s.expires_at.timestamp_millis();
            let session_key = self.session_key(s.id);
            let user_key = self.user_key(s.user_id);
            let mut conn = self.redis.connection();
            redis::pipe()
                .atomic()
                .hset_multiple(
                    &session_key,
                    &[
                        ("row", row),
                        ("seen", s.created_at.timestamp_millis().to_string()),
                        ("user", s.user_id.to_string()),
                        ("token", hex(&s.token_hash)),
                    ],
                )
                .ignore()
                .cmd("PEXPIREAT")
                .arg(&session_key)
                .arg(expires_ms)
                .ignore()
                .cmd("SET")
                .arg(self.token_key(&s.token_hash))
                .arg(s.id.to_string())
                .arg("PXAT")
                .arg(expires_ms)
                .ignore()
                .sadd(&user_key, s.id.to_string())
                .ignore()
                // The set outlives every session in it by at most one lifetime.
                .cmd("PEXPIREAT")
                .arg(&user_key)
                .arg(expires_ms)
                .arg("GT")
                .ignore()
                .cmd("PEXPIREAT")
                .arg(&user_key)
                .arg(expires_ms)
                .arg("NX")
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)
        })
    }

    fn find_live<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<SessionRow>>> {
        Box::pin(async move {
            let mut conn = self.redis.connection();
            let id: Option<String> = conn
                .get(self.token_key(token_hash))
                .await
                .map_err(unavailable)?;
            match id.and_then(|id| id.parse::<Uuid>().ok()) {
                Some(id) => self.load(id, now, idle_since).await,
                None => Ok(None),
            }
        })
    }

    fn touch(&self, id: Uuid, now: DateTime<Utc>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut conn = self.redis.connection();
            self.touch
                .key(self.session_key(id))
                .arg(now.timestamp_millis())
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
    }

    fn delete(&self, user_id: Uuid, id: Uuid) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { self.remove(id, Some(user_id)).await })
    }

    fn delete_by_token<'a>(&'a self, token_hash: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut conn = self.redis.connection();
            let id: Option<String> = conn
                .get(self.token_key(token_hash))
                .await
                .map_err(unavailable)?;
            if let Some(id) = id.and_then(|id| id.parse::<Uuid>().ok()) {
                self.remove(id, None).await?;
            }
            Ok(())
        })
    }

    fn delete_all(&self, user_id: Uuid, keep: Option<Uuid>) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut removed = 0;
            for id in self.session_ids(user_id).await? {
                if Some(id) != keep && self.remove(id, Some(user_id)).await? {
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }

    /// Nothing to do: Redis deletes a session's keys at its absolute end,
    /// and one that ended idle earlier is refused until then.
    fn prune(&self, _now: DateTime<Utc>, _idle_since: DateTime<Utc>) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async { Ok(0) })
    }

    fn list(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<SessionRow>>> {
        Box::pin(async move {
            let mut conn = self.redis.connection();
            let mut live = Vec::new();
            for id in self.session_ids(user_id).await? {
                match self.load(id, now, idle_since).await? {
                    Some(row) => live.push(row),
                    None => {
                        // Expired or idle: Redis dropped it or will; forget the id.
                        let _: std::result::Result<(), _> =
                            conn.srem(self.user_key(user_id), id.to_string()).await;
                    }
                }
            }
            live.sort_by_key(|s| std::cmp::Reverse(s.created_at));
            Ok(live)
        })
    }
}
