//! Rate limiting with GCRA (the generic cell rate algorithm), behind a port
//! with two adapters chosen by configuration: [`InProcessRateLimiter`] (one
//! node; the default) and [`RedisRateLimiter`] (one limit across every node).
//!
//! GCRA keeps one timestamp per key, the "theoretical arrival time" (TAT):
//! each allowed request pushes it `period / limit` further; a request is
//! refused while the TAT is more than `period` ahead of now. That allows
//! bursts of up to `limit` and a steady rate of `limit` per `period`, with no
//! fixed-window edge effects, in O(1) memory per key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

mod redis;

pub use redis::{RateLimitFailMode, RedisRateLimiter};

/// `limit` requests per `period` (bursts up to `limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per period.
    pub limit: u32,
    /// The period.
    pub period: Duration,
}

impl Quota {
    /// `limit` per minute.
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(60),
        }
    }

    /// `limit` per hour.
    pub const fn per_hour(limit: u32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(3600),
        }
    }

    fn emission_interval(self) -> Duration {
        self.period / self.limit.max(1)
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The quota's limit, for the `RateLimit-Limit` header.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Until the quota is fully replenished.
    pub reset_after: Duration,
    /// When refused: how long until one request would be allowed.
    pub retry_after: Duration,
}

/// Where rate-limit state lives.
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one request for `key` against `quota`.
    fn check<'a>(&'a self, key: &'a str, quota: Quota) -> BoxFuture<'a, RateDecision>;
}

/// One node's limits, in memory: right for a single node; a cluster needs
/// the shared adapter so that the limit holds across nodes.
#[derive(Debug, Default)]
pub struct InProcessRateLimiter {
    state: Mutex<HashMap<String, Instant>>,
}

/// Above this many keys, expired ones are swept on the next check.
const SWEEP_THRESHOLD: usize = 10_000;

impl InProcessRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The GCRA step, at a given instant (tests drive the clock).
    pub fn check_at(&self, key: &str, quota: Quota, now: Instant) -> RateDecision {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.len() > SWEEP_THRESHOLD {
            state.retain(|_, tat| *tat > now);
        }
        let tat = state.get(key).copied().filter(|t| *t > now).unwrap_or(now);
        let new_tat = tat + quota.emission_interval();
        let allowed = new_tat.saturating_duration_since(now) <= quota.period;
        if allowed {
            state.insert(key.to_owned(), new_tat);
        }
        RateDecision::after_step(quota, tat.saturating_duration_since(now), allowed)
    }
}

impl RateDecision {
    /// The decision of one GCRA step, from how far the TAT was ahead of now
    /// before the step. Shared by the adapters so that they agree exactly.
    fn after_step(quota: Quota, tat_ahead: Duration, allowed: bool) -> Self {
        let interval = quota.emission_interval();
        let new_ahead = tat_ahead + interval;
        if !allowed {
            return Self {
                allowed: false,
                limit: quota.limit,
                remaining: 0,
                reset_after: tat_ahead,
                retry_after: new_ahead.saturating_sub(quota.period),
            };
        }
        let headroom = quota.period.saturating_sub(new_ahead);
        Self {
            allowed: true,
            limit: quota.limit,
            remaining: u32::try_from(headroom.as_nanos() / interval.as_nanos().max(1))
                .unwrap_or(u32::MAX),
            reset_after: new_ahead,
            retry_after: Duration::ZERO,
        }
    }

    /// The decision when the limiter's store cannot be asked and the
    /// configured fail mode says to refuse.
    fn unavailable(quota: Quota) -> Self {
        Self {
            allowed: false,
            limit: quota.limit,
            remaining: 0,
            reset_after: Duration::from_secs(1),
            retry_after: Duration::from_secs(1),
        }
    }
}

impl RateLimiter for InProcessRateLimiter {
    fn check<'a>(&'a self, key: &'a str, quota: Quota) -> BoxFuture<'a, RateDecision> {
        let decision = self.check_at(key, quota, Instant::now());
        Box::pin(async move { decision })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_of_limit_then_refuses() {
        let limiter = InProcessRateLimiter::new();
        let quota = Quota::per_minute(5);
        let t0 = Instant::now();
        for i in 0..5 {
            let d = limiter.check_at("ip:1", quota, t0);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 4 - i);
        }
        let refused = limiter.check_at("ip:1", quota, t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(12));
        // Other keys are independent.
        assert!(limiter.check_at("ip:2", quota, t0).allowed);
    }

    #[test]
    fn replenishes_at_the_steady_rate() {
        let limiter = InProcessRateLimiter::new();
        let quota = Quota::per_minute(6);
        let t0 = Instant::now();
        for _ in 0..6 {
            assert!(limiter.check_at("k", quota, t0).allowed);
        }
        assert!(
            !limiter
                .check_at("k", quota, t0 + Duration::from_secs(9))
                .allowed
        );
        assert!(
            limiter
                .check_at("k", quota, t0 + Duration::from_secs(10))
                .allowed
        );
        assert!(
            !limiter
                .check_at("k", quota, t0 + Duration::from_secs(10))
                .allowed
        );
        // After a full idle period the whole burst is back.
        let later = t0 + Duration::from_secs(200);
        for _ in 0..6 {
            assert!(limiter.check_at("k", quota, later).allowed);
        }
    }

    #[test]
    fn refused_requests_do_not_consume_quota() {
        let limiter = InProcessRateLimiter::new();
        let quota = Quota::per_minute(1);
        let t0 = Instant::now();
        assert!(limiter.check_at("k", quota, t0).allowed);
        for s in 1..60 {
            assert!(
                !limiter
                    .check_at("k", quota, t0 + Duration::from_secs(s))
                    .allowed
            );
        }
        assert!(
            limiter
                .check_at("k", quota, t0 + Duration::from_secs(60))
                .allowed
        );
    }
}
