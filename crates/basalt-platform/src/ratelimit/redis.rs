//! The distributed adapter: GCRA state in Redis, updated by one Lua script so
//! that the read-decide-write step is atomic, and timed by Redis's clock so
//! that nodes with skewed clocks still share one limit.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{InProcessRateLimiter, Quota, RateDecision, RateLimiter};
use crate::redis::Redis;

const KEY_PREFIX: &str = "ratelimit:";

/// One GCRA step in microseconds: `{allowed, tat_ahead}`, where `tat_ahead`
/// is how far the stored TAT was ahead of now before the step. The TAT is
/// written with `%d`: plain `tostring` would print 16 digits in exponent form.
/// Its expiry is at least 1 ms: a limit of over 60,000,000 a minute has a
/// step under a microsecond, and `SET … PX 0` is an error (found by the
/// chat benchmark, which raises the send limit out of the way).
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > period then
  return {0, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, tat - now}
";

/// What a distributed limiter does while Redis cannot be asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitFailMode {
    /// Each node limits on its own, in memory: the limit still holds per node
    /// (so across N nodes, up to N times the quota). The default: abuse stays
    /// bounded and honest clients are not refused.
    #[default]
    Local,
    /// Allow every request: availability first.
    Open,
    /// Refuse every limited request with `429`: protection first.
    Closed,
}

/// Limits shared by every node through Redis.
#[derive(Debug)]
pub struct RedisRateLimiter {
    redis: Redis,
    script: redis::Script,
    fail_mode: RateLimitFailMode,
    fallback: InProcessRateLimiter,
}

impl RedisRateLimiter {
    /// A limiter over `redis`, falling back as `fail_mode` says.
    pub fn new(redis: Redis, fail_mode: RateLimitFailMode) -> Self {
        Self {
            redis,
            script: redis::Script::new(GCRA_SCRIPT),
            fail_mode,
            fallback: InProcessRateLimiter::new(),
        }
    }
}

impl RateLimiter for RedisRateLimiter {
    fn check<'a>(&'a self, key: &'a str, quota: Quota) -> BoxFuture<'a, RateDecision> {
        Box::pin(async move {
            let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            let mut conn = self.redis.connection();
            let result = self
                .script
                .key(self.redis.key(&format!("{KEY_PREFIX}{key}")))
                .arg(micros(quota.emission_interval()))
                .arg(micros(quota.period))
                .invoke_async::<(u8, i64)>(&mut conn)
                .await;
            self.redis.observe(&result);
            match result {
                Ok((allowed, tat_ahead)) => RateDecision::after_step(
                    quota,
                    Duration::from_micros(u64::try_from(tat_ahead).unwrap_or(0)),
                    allowed == 1,
                ),
                // `Redis::observe` has logged the outage.
                Err(_) => match self.fail_mode {
                    RateLimitFailMode::Local => {
                        self.fallback
                            .check_at(key, quota, std::time::Instant::now())
                    }
                    RateLimitFailMode::Open => {
                        RateDecision::after_step(quota, Duration::ZERO, true)
                    }
                    RateLimitFailMode::Closed => RateDecision::unavailable(quota),
                },
            }
        })
    }
}
