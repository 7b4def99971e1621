//! The identity module's configuration section: `[identity]` in the TOML
//! file, `BASALT_IDENTITY__*` in the environment.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::passwords::PasswordParams;

/// Everything tunable about accounts, sessions and tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Password hashing cost (`[identity.passwords]`).
    pub passwords: PasswordParams,
    /// A session unused this long ends.
    pub session_idle_timeout_secs: u64,
    /// A session ends this long after sign-in, used or not.
    pub session_absolute_timeout_secs: u64,
    /// Lifetime of an access token (JWT).
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh-token family, from sign-in.
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of the access token the RealWorld API hands out. Its
    /// clients have no refresh step, so it is long; it ends early with the
    /// account's token generation (sign out everywhere, a password reset).
    pub realworld_token_ttl_secs: u64,
    /// A spent refresh token presented again within this window is taken as
    /// a client retrying the same refresh concurrently, not as theft.
    pub refresh_reuse_grace_secs: u64,
    /// Lifetime of an email-verification link.
    pub email_verification_ttl_secs: u64,
    /// Lifetime of a password-reset link.
    pub password_reset_ttl_secs: u64,
    /// Failed sign-ins before the account is locked.
    pub lockout_threshold: u32,
    /// First lockout duration; doubles with each further lockout.
    pub lockout_base_secs: u64,
    /// Longest lockout.
    pub lockout_max_secs: u64,
    /// How often each node reloads the signing keys, so that a rotation
    /// made by `basalt keys rotate` reaches every node.
    pub signing_keys_refresh_secs: u64,
    /// Rate limits (`[identity.rate_limits]`).
    pub rate_limits: RateLimits,
    /// Where browser sessions live: `database` (durable; the default) or
    /// `redis` (needs `BASALT_REDIS_URL`; see `store::redis_sessions`).
    pub session_store: SessionStoreKind,
}

/// The session store adapters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStoreKind {
    /// The `identity_sessions` table.
    #[default]
    Database,
    /// Redis.
    Redis,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            passwords: PasswordParams::default(),
            session_idle_timeout_secs: 12 * 3600,
            session_absolute_timeout_secs: 7 * 24 * 3600,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            // What the RealWorld reference backend uses.
            realworld_token_ttl_secs: 60 * 24 * 3600,
            refresh_reuse_grace_secs: 10,
            email_verification_ttl_secs: 48 * 3600,
            password_reset_ttl_secs: 3600,
            lockout_threshold: 5,
            lockout_base_secs: 60,
            lockout_max_secs: 3600,
            signing_keys_refresh_secs: 60,
            rate_limits: RateLimits::default(),
            session_store: SessionStoreKind::default(),
        }
    }
}

/// Requests allowed per client IP and per account on the sensitive routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Sign-ins (session or token) per IP per minute.
    pub login_per_ip_per_minute: u32,
    /// Sign-ins per account (email) per minute, whether it exists or not.
    pub login_per_account_per_minute: u32,
    /// Registrations per IP per hour.
    pub register_per_ip_per_hour: u32,
    /// Password-reset requests per IP per hour.
    pub reset_per_ip_per_hour: u32,
    /// Password-reset requests per account per hour.
    pub reset_per_account_per_hour: u32,
    /// Token refreshes per IP per minute.
    pub refresh_per_ip_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_per_ip_per_minute: 30,
            login_per_account_per_minute: 10,
            register_per_ip_per_hour: 30,
            reset_per_ip_per_hour: 10,
            reset_per_account_per_hour: 5,
            refresh_per_ip_per_minute: 60,
        }
    }
}

impl IdentityConfig {
    /// Checks relations between values that serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.session_idle_timeout_secs == 0 || self.session_absolute_timeout_secs == 0 {
            return Err("session timeouts must be greater than 0".into());
        }
        if self.access_token_ttl_secs == 0
            || self.refresh_token_ttl_secs == 0
            || self.realworld_token_ttl_secs == 0
        {
            return Err("token lifetimes must be greater than 0".into());
        }
        if self.signing_keys_refresh_secs == 0 {
            return Err("signing_keys_refresh_secs must be greater than 0".into());
        }
        if self.lockout_threshold == 0 {
            return Err("lockout_threshold must be at least 1".into());
        }
        Ok(())
    }

    /// Seconds as a [`chrono::Duration`].
    pub(crate) fn secs(secs: u64) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
    }

    /// Key life cycle: a retired key stays valid for as long as a token it
    /// signed may live, plus the time nodes take to notice a rotation.
    pub fn key_options(&self) -> crate::tokens::keys::KeyOptions {
        let refresh = Duration::from_secs(self.signing_keys_refresh_secs);
        let longest = self.access_token_ttl().max(self.realworld_token_ttl());
        let covering = longest + refresh + Duration::from_secs(60);
        crate::tokens::keys::KeyOptions {
            retired_ttl: covering.max(Duration::from_secs(3600)),
            refresh_interval: refresh,
            ..crate::tokens::keys::KeyOptions::default()
        }
    }

    /// The access-token lifetime.
    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }

    /// The lifetime of RealWorld tokens.
    pub fn realworld_token_ttl(&self) -> Duration {
        Duration::from_secs(self.realworld_token_ttl_secs)
    }
}
