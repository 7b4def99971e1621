//! The identity service: every operation on accounts, sessions and tokens.
//! Routes are thin wrappers; other modules (the blog) call this service,
//! which they find in the platform's service registry.

mod accounts;
mod housekeeping;
mod mail;
mod recovery;
mod signin;
mod standing;
mod tokens;
mod validation;

pub use housekeeping::{PRUNE_JOB, Pruned};
pub use mail::SEND_LINK_JOB;

use std::sync::Arc;

use basalt_platform::Db;
use basalt_platform::background::BackgroundTasks;
use basalt_platform::cache::{Cache, Flights};
use basalt_platform::events::EventWaker;
use basalt_platform::jobs::JobQueue;
use basalt_platform::ratelimit::{Quota, RateLimiter};
use chrono::{DateTime, Utc};

pub use accounts::{ProfileChanges, Registration};
pub use signin::{NewSessionCookie, SignInOutcome};
pub use standing::Standing;
pub use tokens::TokenPair;
pub use validation::{validate_email, validate_username};

use crate::config::IdentityConfig;
use crate::error::IdentityError;
use crate::passwords::Passwords;
use crate::store::sessions::SessionStore;
use crate::tokens::jwt::TokenIssuer;
use crate::tokens::keys::SigningKeys;

/// Cheap to clone; offered to other modules through the service registry.
#[derive(Clone)]
pub struct IdentityService {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    config: IdentityConfig,
    passwords: Passwords,
    sessions: Arc<dyn SessionStore>,
    keys: SigningKeys,
    issuer: TokenIssuer,
    jobs: JobQueue,
    events: EventWaker,
    rate_limiter: Arc<dyn RateLimiter>,
    web: WebSettings,
    background: BackgroundTasks,
    cache: Arc<dyn Cache>,
    flights: Flights,
    user_changed: std::sync::RwLock<Vec<UserChanged>>,
}

/// The event recorded, in the same transaction, when an account is created:
/// payload `{"user_id": uuid, "username": string}`.
pub const USER_REGISTERED: &str = "identity.user_registered";

/// A callback run when an account's public profile changes or it is deleted,
/// after the change is committed.
pub type UserChanged =
    Arc<dyn Fn(uuid::Uuid) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

/// How Basalt is reached from browsers: for links in mail, cookie names and
/// origin checks.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Base for links in mail, e.g. `https://app.example.com`.
    pub public_url: Option<String>,
    /// Whether clients reach Basalt over HTTPS (Secure, `__Host-` cookie).
    pub https: bool,
    /// Origins other than Basalt's own allowed to send cookie-authenticated writes.
    pub trusted_origins: Vec<String>,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService").finish_non_exhaustive()
    }
}

/// The parts the service is built from.
pub struct Parts {
    /// Database.
    pub db: Db,
    /// Settings.
    pub config: IdentityConfig,
    /// Password hasher.
    pub passwords: Passwords,
    /// Session store.
    pub sessions: Arc<dyn SessionStore>,
    /// Signing keys.
    pub keys: SigningKeys,
    /// Access-token issuer.
    pub issuer: TokenIssuer,
    /// Job queue (for mail).
    pub jobs: JobQueue,
    /// Wakes the event relay after `identity.user_registered` is recorded.
    pub events: EventWaker,
    /// Rate limiter.
    pub rate_limiter: Arc<dyn RateLimiter>,
    /// Browser-facing settings.
    pub web: WebSettings,
    /// Where sign-in checks run, so that shutdown waits for them.
    pub background: BackgroundTasks,
    /// Where accounts' standings are cached (shared by the nodes with Redis).
    pub cache: Arc<dyn Cache>,
}

impl IdentityService {
    /// Assembles the service.
    pub fn new(parts: Parts) -> Self {
        Self {
            inner: Arc::new(Inner {
                db: parts.db,
                config: parts.config,
                passwords: parts.passwords,
                sessions: parts.sessions,
                keys: parts.keys,
                issuer: parts.issuer,
                jobs: parts.jobs,
                events: parts.events,
                rate_limiter: parts.rate_limiter,
                web: parts.web,
                background: parts.background,
                cache: parts.cache,
                flights: Flights::default(),
                user_changed: std::sync::RwLock::new(Vec::new()),
            }),
        }
    }

    /// Runs `callback` whenever an account's profile (username, bio, image)
    /// changes or the account is deleted, before the change is reported to
    /// the caller: how modules that show profiles keep their caches exact.
    pub fn on_user_changed(&self, callback: UserChanged) {
        if let Ok(mut callbacks) = self.inner.user_changed.write() {
            callbacks.push(callback);
        }
    }

    /// Runs the callbacks on a task of their own, so that a caller cancelled
    /// after the commit (a client hanging up) cannot skip them, and waits.
    pub(crate) async fn user_changed(&self, id: uuid::Uuid) {
        let pending: Vec<_> = match self.inner.user_changed.read() {
            Ok(callbacks) => callbacks.iter().map(|callback| callback(id)).collect(),
            Err(_) => Vec::new(),
        };
        let all = tokio::spawn(futures_util::future::join_all(pending));
        if let Err(error) = all.await {
            tracing::error!(%error, "a user-changed callback failed");
        }
    }

    /// The settings.
    pub fn config(&self) -> &IdentityConfig {
        &self.inner.config
    }

    /// Browser-facing settings.
    pub fn web(&self) -> &WebSettings {
        &self.inner.web
    }

    /// The signing keys (for the JWKS document).
    pub fn keys(&self) -> &SigningKeys {
        &self.inner.keys
    }

    /// The access-token issuer and verifier.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.inner.issuer
    }

    /// The session store.
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.inner.sessions
    }

    /// The job queue.
    pub fn jobs(&self) -> &JobQueue {
        &self.inner.jobs
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Counts a request against `quota` for `key`; 429 when over.
    pub async fn limit(&self, key: &str, quota: Quota) -> Result<(), IdentityError> {
        let decision = self.inner.rate_limiter.check(key, quota).await;
        if decision.allowed {
            Ok(())
        } else {
            Err(IdentityError::RateLimited(decision))
        }
    }

    /// The idle cut-off: sessions last used before it have ended.
    pub(crate) fn idle_since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - IdentityConfig::secs(self.inner.config.session_idle_timeout_secs)
    }

    /// An absolute link for mail, e.g. `/reset-password?token=…`.
    pub(crate) fn link(&self, path_and_query: &str) -> String {
        format!(
            "{}{path_and_query}",
            self.inner
                .web
                .public_url
                .as_deref()
                .unwrap_or("http://127.0.0.1:8080")
        )
    }
}
