//! The distributed adapter: presence shared by every node through Redis.
//!
//! Two keys: a hash of statuses (`{key_prefix}:presence:status`) and a
//! sorted set of deadlines in milliseconds (`{key_prefix}:presence:deadlines`).
//! Each operation is one Lua script (atomic, one round trip), timed by
//! Redis's clock so that the nodes' clocks need not agree. `claim_expired`
//! takes the expired keys out in the script that finds them, so no two
//! callers can get the same key.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{CLAIM_BATCH, Presence, PresenceError};
use crate::redis::Redis;

/// `now` in milliseconds by Redis's clock, in each script.
const NOW: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS: statuses, deadlines. ARGV: key, status, ttl in ms. Returns the
/// status before, unless the key was absent (expired and unclaimed counts
/// as there: nobody announced it gone).
const HEARTBEAT: &str = "
local before = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return before
";

/// KEYS: statuses, deadlines. ARGV: the keys. Returns their statuses
/// (false, that is nil, for absent or expired ones).
const STATUSES: &str = "
local out = {}
for i, key in ipairs(ARGV) do
  local deadline = redis.call('ZSCORE', KEYS[2], key)
  if deadline and tonumber(deadline) > now then
    out[i] = redis.call('HGET', KEYS[1], key)
  else
    out[i] = false
  end
end
return out
";

/// KEYS: statuses, deadlines. ARGV: key. Returns 1 when it was there.
const REMOVE: &str = "
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
";

/// KEYS: statuses, deadlines. ARGV: batch size. Returns the expired keys,
/// removed.
const CLAIM_EXPIRED: &str = "
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
if #expired > 0 then
  redis.call('ZREM', KEYS[2], unpack(expired))
  redis.call('HDEL', KEYS[1], unpack(expired))
end
return expired
";

/// Presence shared by every node through Redis.
pub struct RedisPresence {
    redis: Redis,
    statuses_key: String,
    deadlines_key: String,
    heartbeat: redis::Script,
    statuses: redis::Script,
    remove: redis::Script,
    claim_expired: redis::Script,
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence").finish_non_exhaustive()
    }
}

impl RedisPresence {
    /// Presence over `redis`, under its key prefix.
    pub fn new(redis: Redis) -> Self {
        let script = |body: &str| redis::Script::new(&format!("{NOW}{body}"));
        Self {
            statuses_key: redis.key("presence:status"),
            deadlines_key: redis.key("presence:deadlines"),
            redis,
            heartbeat: script(HEARTBEAT),
            statuses: script(STATUSES),
            remove: script(REMOVE),
            claim_expired: script(CLAIM_EXPIRED),
        }
    }

    /// Runs `script` with the two keys and `args`.
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        args: &[&str],
    ) -> Result<T, PresenceError> {
        let mut invocation = script.key(&self.statuses_key);
        invocation.key(&self.deadlines_key);
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.redis.connection();
        let result = invocation.invoke_async::<T>(&mut conn).await;
        self.redis.observe(&result);
        Ok(result?)
    }
}

impl Presence for RedisPresence {
    fn heartbeat<'a>(
        &'a self,
        key: &'a str,
        status: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<String>, PresenceError>> {
        Box::pin(async move {
            let millis = ttl.as_millis().max(1).to_string();
            self.run(&self.heartbeat, &[key, status, &millis]).await
        })
    }

    fn statuses<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, PresenceError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let args: Vec<&str> = keys.iter().map(String::as_str).collect();
            self.run(&self.statuses, &args).await
        })
    }

    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, PresenceError>> {
        Box::pin(async move { Ok(self.run::<i64>(&self.remove, &[key]).await? > 0) })
    }

    fn claim_expired<'a>(&'a self) -> BoxFuture<'a, Result<Vec<String>, PresenceError>> {
        Box::pin(async move {
            let batch = CLAIM_BATCH.to_string();
            self.run(&self.claim_expired, &[&batch]).await
        })
    }
}
