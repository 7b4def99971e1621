//! The Ed25519 keys that sign access tokens, kept in `identity_signing_keys`.
//!
//! A key goes through three states:
//! - `next`: generated and published in the JWKS, but not signing yet, so
//!   that every verifier (and every JWKS cache) knows it before the first
//!   token it signs appears;
//! - `active`: signs new tokens; exactly one at a time;
//! - `retired`: no longer signs (its private key is erased from the
//!   database), still published and accepted for [`KeyOptions::retired_ttl`]
//!   so that tokens it signed stay valid until they expire.
//!
//! [`SigningKeys::rotate`] (the CLI's `basalt keys rotate`) moves every key
//! one step in one transaction. Servers pick the change up by reloading from
//! the database every [`KeyOptions::refresh_interval`], and at once (rate
//! limited) when they meet a token whose `kid` they do not know. A server
//! that has not reloaded yet still signs with the key just retired, which
//! verifies everywhere; and it accepts tokens of the new active key, which
//! it already knows as `next`.
//!
//! Key ids are RFC 7638 JWK thumbprints, so a kid is bound to its key.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use basalt_platform::db::{Db, Tx};
use basalt_platform::supervisor::CancellationToken;
use basalt_platform::with_tx;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

/// Timing of the key life cycle: how long retired keys stay valid and how
/// often servers look for a rotation. Defaults: 1 h, 60 s, 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOptions {
    /// How long a retired key is still published and accepted. Must cover the
    /// access-token lifetime plus [`refresh_interval`](Self::refresh_interval)
    /// (a node may sign with a just-retired key until it reloads).
    pub retired_ttl: Duration,
    /// How often the keys are reloaded from the database.
    pub refresh_interval: Duration,
    /// Least time between two reloads caused by tokens with an unknown `kid`,
    /// so that garbage tokens cannot turn into a query each.
    pub min_reload_interval: Duration,
}

impl Default for KeyOptions {
    fn default() -> Self {
        Self {
            retired_ttl: Duration::from_secs(60 * 60),
            refresh_interval: Duration::from_secs(60),
            min_reload_interval: Duration::from_secs(5),
        }
    }
}

/// What [`SigningKeys::rotate`] did, by key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// The key that was active and is now retired (none on an empty table).
    pub retired: Option<String>,
    /// The key that signs from now on (the former `next` key).
    pub active: String,
    /// The newly generated key, published from now on, active after the
    /// next rotation.
    pub next: String,
}

/// Where a key is in its life cycle; stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signing.
    Active,
    /// Published and verifying until its retirement is `retired_ttl` old.
    Retired,
}

impl KeyState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "next" => Ok(Self::Next),
            "active" => Ok(Self::Active),
            "retired" => Ok(Self::Retired),
            other => Err(anyhow!("unknown signing key state {other:?}")),
        }
    }
}

/// The signing keys of this deployment, loaded from the database. Cheap to
/// clone; clones share the loaded keys.
#[derive(Clone)]
pub struct SigningKeys {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    options: KeyOptions,
    /// Swapped whole on reload, so readers never see a half-updated set and
    /// never wait for the database.
    current: RwLock<Arc<KeySet>>,
    /// When the last reload caused by an unknown `kid` happened. A tokio
    /// mutex: held across that reload, it also makes concurrent misses wait
    /// for one query instead of each running their own.
    last_miss_reload: Mutex<Option<Instant>>,
}

/// A consistent snapshot of the table.
struct KeySet {
    active: ActiveKey,
    /// Next, active and retired keys by kid.
    public: HashMap<String, PublicKey>,
}

/// The key that signs, with its id.
#[derive(Clone)]
pub(crate) struct ActiveKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
}

#[derive(Clone)]
struct PublicKey {
    kid: String,
    /// base64url of the raw 32-byte public key (the JWK `x`).
    x: String,
    decoding: DecodingKey,
    state: KeyState,
    retired_at: Option<DateTime<Utc>>,
}

impl PublicKey {
    /// Whether the key may still verify tokens (and be published) at `now`.
    fn usable(&self, now: DateTime<Utc>, retired_ttl: Duration) -> bool {
        match (self.state, self.retired_at) {
            (KeyState::Next | KeyState::Active, _) => true,
            (KeyState::Retired, Some(retired_at)) => chrono::Duration::from_std(retired_ttl)
                .ok()
                .and_then(|ttl| retired_at.checked_add_signed(ttl))
                .is_some_and(|until| now < until),
            // A retired key without a retirement time is a corrupt row.
            (KeyState::Retired, None) => false,
        }
    }

    fn jwk(&self) -> serde_json::Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x,
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

// Hand-written so that no private key material can reach a log line.
impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.snapshot();
        f.debug_struct("SigningKeys")
            .field("active", &set.active.kid)
            .field("published", &set.public.len())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ActiveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A row of `identity_signing_keys`.
type KeyRow = (
    String,
    Option<Vec<u8>>,
    Vec<u8>,
    String,
    Option<DateTime<Utc>>,
);

impl SigningKeys {
    /// Loads the keys with the default [`KeyOptions`]; on the first start,
    /// creates an active and a next key. See [`load_or_create_with`](Self::load_or_create_with).
    pub async fn load_or_create(db: &Db) -> anyhow::Result<Self> {
        Self::load_or_create_with(db, KeyOptions::default()).await
    }

    /// Loads the keys; when there is no active or no next key (first start),
    /// creates what is missing in one serialised transaction, so that nodes
    /// starting together on a fresh database agree on one active key.
    ///
    /// Reloading them every [`KeyOptions::refresh_interval`] is
    /// [`refresh_until`](Self::refresh_until)'s job, which the module runs
    /// as a supervised background service.
    pub async fn load_or_create_with(db: &Db, options: KeyOptions) -> anyhow::Result<Self> {
        let set = match load_set(db, options.retired_ttl).await? {
            Loaded::Complete(set) => set,
            Loaded::Incomplete => {
                ensure_keys(db).await?;
                match load_set(db, options.retired_ttl).await? {
                    Loaded::Complete(set) => set,
                    Loaded::Incomplete => {
                        return Err(anyhow!(
                            "the signing keys are still incomplete after creating them"
                        ));
                    }
                }
            }
        };
        tracing::info!(active_kid = %set.active.kid, published = set.public.len(), "signing keys loaded");
        let keys = Self {
            inner: Arc::new(Inner {
                db: db.clone(),
                options,
                current: RwLock::new(Arc::new(set)),
                last_miss_reload: Mutex::new(None),
            }),
        };
        Ok(keys)
    }

    /// Retires the active key, activates the next one and generates a new
    /// next key, in one transaction. Running servers pick the change up
    /// within [`KeyOptions::refresh_interval`].
    pub async fn rotate(db: &Db) -> anyhow::Result<Rotation> {
        let now = Utc::now();
        let mut tx = begin_serialised(db).await?;
        let current: Vec<(String, String)> = with_tx!(&mut tx, |conn| {
            sqlx::query_as(
                "SELECT kid, state FROM identity_signing_keys WHERE state IN ('active', 'next')",
            )
            .fetch_all(conn)
            .await
        })?;
        let kid_in = |state: KeyState| {
            current
                .iter()
                .find(|(_, s)| s == state.as_str())
                .map(|(kid, _)| kid.clone())
        };
        let retired = kid_in(KeyState::Active);
        if let Some(kid) = &retired {
            // The private key is no longer needed once the key stops signing;
            // erasing it means a later database leak cannot forge with it.
            with_tx!(&mut tx, |conn| {
                sqlx::query(
                    "UPDATE identity_signing_keys \
                     SET state = 'retired', retired_at = $1, private_key = NULL WHERE kid = $2",
                )
                .bind(now)
                .bind(kid)
                .execute(conn)
                .await
                .map(|done| done.rows_affected())
            })?;
        }
        let active = match kid_in(KeyState::Next) {
            Some(kid) => {
                with_tx!(&mut tx, |conn| {
                    sqlx::query(
                        "UPDATE identity_signing_keys \
                         SET state = 'active', activated_at = $1 WHERE kid = $2",
                    )
                    .bind(now)
                    .bind(&kid)
                    .execute(conn)
                    .await
                    .map(|done| done.rows_affected())
                })?;
                kid
            }
            // No next key (only if the table was edited by hand): activate a
            // fresh one. Servers learn it from the first token they meet.
            None => insert_key(&mut tx, &NewKey::generate()?, KeyState::Active, now).await?,
        };
        let next = insert_key(&mut tx, &NewKey::generate()?, KeyState::Next, now).await?;
        tx.commit().await?;
        tracing::info!(retired = ?retired, active = %active, next = %next, "signing keys rotated");
        Ok(Rotation {
            retired,
            active,
            next,
        })
    }

    /// Reloads the keys from the database (e.g. after a rotation by another
    /// process). On error the keys loaded before stay in use.
    pub async fn reload(&self) -> anyhow::Result<()> {
        match load_set(&self.inner.db, self.inner.options.retired_ttl).await? {
            Loaded::Complete(set) => {
                let set = Arc::new(set);
                let previous = {
                    let mut current = self
                        .inner
                        .current
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    std::mem::replace(&mut *current, set)
                };
                let active = self.snapshot().active.kid.clone();
                if previous.active.kid != active {
                    tracing::info!(active_kid = %active, "signing key changed");
                }
                Ok(())
            }
            Loaded::Incomplete => Err(anyhow!(
                "the database has no active or no next signing key; keeping the loaded keys"
            )),
        }
    }

    /// The JSON Web Key Set (RFC 7517, keys as in RFC 8037): the next, the
    /// active and the retired keys still within their grace period. Public
    /// parts only.
    pub fn jwks(&self) -> serde_json::Value {
        let set = self.snapshot();
        let now = Utc::now();
        let ttl = self.inner.options.retired_ttl;
        // Stable order (active, next, retired by kid) for caches and tests.
        let mut keys: Vec<&PublicKey> = set
            .public
            .values()
            .filter(|key| key.usable(now, ttl))
            .collect();
        keys.sort_by_key(|key| {
            let rank = match key.state {
                KeyState::Active => 0,
                KeyState::Next => 1,
                KeyState::Retired => 2,
            };
            (rank, key.kid.clone())
        });
        json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() })
    }

    /// The options these keys were loaded with.
    pub fn options(&self) -> KeyOptions {
        self.inner.options
    }

    /// The id of the key that signs now.
    pub fn active_kid(&self) -> String {
        self.snapshot().active.kid.clone()
    }

    /// The key that signs new tokens.
    pub(crate) fn active(&self) -> ActiveKey {
        self.snapshot().active.clone()
    }

    /// The verification key for `kid`, if it is a next, active or unexpired
    /// retired key. An unknown kid triggers one reload (rate limited), since
    /// another process may have rotated the keys.
    pub(crate) async fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.lookup(kid) {
            return Some(key);
        }
        self.reload_after_miss().await;
        self.lookup(kid)
    }

    fn lookup(&self, kid: &str) -> Option<DecodingKey> {
        let set = self.snapshot();
        set.public
            .get(kid)
            .filter(|key| key.usable(Utc::now(), self.inner.options.retired_ttl))
            .map(|key| key.decoding.clone())
    }

    async fn reload_after_miss(&self) {
        let mut last = self.inner.last_miss_reload.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.inner.options.min_reload_interval) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "reloading signing keys after an unknown kid failed");
        }
    }

    fn snapshot(&self) -> Arc<KeySet> {
        Arc::clone(
            &self
                .inner
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Reloads the keys every [`KeyOptions::refresh_interval`] until `stop`
    /// is cancelled (or every other clone of the keys is gone: between
    /// rounds the loop holds only a weak reference, so it does not keep the
    /// keys, and the pool, alive).
    pub fn refresh_until(
        &self,
        stop: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + use<> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let interval = self.inner.options.refresh_interval;
        async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(interval) => {}
                }
                let Some(inner) = weak.upgrade() else { break };
                let keys = SigningKeys { inner };
                // A reload in progress is not cut short: it is one query.
                if let Err(e) = keys.reload().await {
                    tracing::warn!(error = %e, "periodic reload of signing keys failed");
                }
            }
        }
    }
}

enum Loaded {
    Complete(KeySet),
    /// No active or no next key.
    Incomplete,
}

async fn load_set(db: &Db, retired_ttl: Duration) -> anyhow::Result<Loaded> {
    let rows: Vec<KeyRow> = basalt_platform::with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT kid, private_key, public_key, state, retired_at FROM identity_signing_keys",
        )
        .fetch_all(conn)
        .await
    })?;
    let now = Utc::now();
    let mut active = None;
    let mut has_next = false;
    let mut public = HashMap::new();
    for (kid, private_key, public_key, state, retired_at) in rows {
        let state = KeyState::parse(&state)?;
        let raw: [u8; 32] = public_key
            .as_slice()
            .try_into()
            .map_err(|_| anyhow!("signing key {kid}: public key is not 32 bytes"))?;
        let x = URL_SAFE_NO_PAD.encode(raw);
        anyhow::ensure!(
            thumbprint(&x) == kid,
            "signing key {kid}: the kid is not the thumbprint of its public key"
        );
        let key = PublicKey {
            kid: kid.clone(),
            decoding: DecodingKey::from_ed_components(&x)
                .with_context(|| format!("signing key {kid}: unusable public key"))?,
            x,
            state,
            retired_at,
        };
        if !key.usable(now, retired_ttl) {
            continue;
        }
        match state {
            KeyState::Active => {
                let der = private_key
                    .with_context(|| format!("active signing key {kid} has no private key"))?;
                // Check the pair now: a mismatch would otherwise surface as
                // tokens that no one can verify.
                let signing = SigningKey::from_pkcs8_der(&der)
                    .map_err(|_| anyhow!("signing key {kid}: private key is not PKCS#8 Ed25519"))?;
                anyhow::ensure!(
                    signing.verifying_key().to_bytes() == raw,
                    "signing key {kid}: private and public key do not match"
                );
                active = Some(ActiveKey {
                    kid: kid.clone(),
                    encoding: EncodingKey::from_ed_der(&der),
                });
            }
            KeyState::Next => has_next = true,
            KeyState::Retired => {}
        }
        public.insert(kid, key);
    }
    Ok(match active {
        Some(active) if has_next => Loaded::Complete(KeySet { active, public }),
        _ => Loaded::Incomplete,
    })
}

/// Creates the missing active and/or next key.
async fn ensure_keys(db: &Db) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut tx = begin_serialised(db).await?;
    // Re-read inside the serialised transaction: another node may have
    // created the keys since we looked.
    let states: Vec<String> = with_tx!(&mut tx, |conn| {
        sqlx::query_scalar(
            "SELECT state FROM identity_signing_keys WHERE state IN ('active', 'next')",
        )
        .fetch_all(conn)
        .await
    })?;
    let has_active = states.iter().any(|s| s == KeyState::Active.as_str());
    let has_next = states.iter().any(|s| s == KeyState::Next.as_str());
    if !has_active {
        let kid = insert_key(&mut tx, &NewKey::generate()?, KeyState::Active, now).await?;
        tracing::info!(kid = %kid, "generated the active signing key");
    }
    if !has_next {
        let kid = insert_key(&mut tx, &NewKey::generate()?, KeyState::Next, now).await?;
        tracing::info!(kid = %kid, "generated the next signing key");
    }
    tx.commit().await?;
    Ok(())
}

/// A write transaction that no other key-changing transaction runs beside.
/// SQLite's `BEGIN IMMEDIATE` (what [`Db::begin`] does) already serialises
/// writers. PostgreSQL needs a table lock: otherwise two nodes can both see
/// "no active key", and one fails on the unique index. `SHARE ROW EXCLUSIVE`
/// conflicts with itself and with writes, but not with plain reads, so
/// verifying servers are never blocked.
async fn begin_serialised(db: &Db) -> Result<Tx, sqlx::Error> {
    let mut tx = db.begin().await?;
    if let Tx::Postgres(pg) = &mut tx {
        sqlx::query("LOCK TABLE identity_signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut **pg)
            .await?;
    }
    Ok(tx)
}

/// A freshly generated key pair in storage form.
struct NewKey {
    kid: String,
    private_der: Vec<u8>,
    public: [u8; 32],
}

impl NewKey {
    fn generate() -> anyhow::Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow!("no randomness for a signing key: {e}"))?;
        let signing = SigningKey::from_bytes(&seed);
        let private_der = signing
            .to_pkcs8_der()
            .map_err(|e| anyhow!("encoding a signing key as PKCS#8: {e}"))?
            .as_bytes()
            .to_vec();
        let public = signing.verifying_key().to_bytes();
        Ok(Self {
            kid: thumbprint(&URL_SAFE_NO_PAD.encode(public)),
            private_der,
            public,
        })
    }
}

async fn insert_key(
    tx: &mut Tx,
    key: &NewKey,
    state: KeyState,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let activated_at = (state == KeyState::Active).then_some(now);
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO identity_signing_keys \
             (kid, private_key, public_key, state, created_at, activated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(&key.private_der)
        .bind(key.public.as_slice())
        .bind(state.as_str())
        .bind(now)
        .bind(activated_at)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(key.kid.clone())
}

/// RFC 7638 thumbprint of an Ed25519 JWK (RFC 8037 §2): SHA-256 of the
/// required members in lexicographic order, without whitespace, base64url.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A migrated database for the tests of this module and of `jwt`.
#[cfg(test)]
pub(crate) mod test_support {
    use basalt_platform::config::{DatabaseConfig, DatabaseUrl};
    use basalt_platform::db::{Db, MigrationFile, Migrations, apply_migrations};

    /// This file's migration, listed here because the crate's real list
    /// belongs to `lib.rs`.
    static MIGRATIONS: &[MigrationFile] = &[MigrationFile {
        version: 2006,
        description: "create_signing_keys",
        sqlite: include_str!("../../migrations/sqlite/2006_create_signing_keys.sql"),
        postgres: include_str!("../../migrations/postgres/2006_create_signing_keys.sql"),
    }];

    /// A fresh, migrated database and how to open more pools on it.
    pub(crate) struct TestDb {
        pub(crate) db: Db,
        pub(crate) url: DatabaseUrl,
        /// Holds the SQLite file; removed on drop.
        _dir: tempfile::TempDir,
    }

    impl TestDb {
        /// Another pool on the same database: a second node.
        pub(crate) async fn another_node(&self) -> Db {
            Db::connect(&self.url, &DatabaseConfig::default())
                .await
                .expect("connect")
        }
    }

    /// A fresh database (SQLite, or PostgreSQL with `TEST_POSTGRES_URL`)
    /// with the signing-keys table.
    pub(crate) async fn test_db() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = basalt_testkit::fresh_database(dir.path()).await;
        let db = Db::connect(&url, &DatabaseConfig::default())
            .await
            .expect("connect");
        apply_migrations(
            &db,
            &[Migrations {
                module: "identity-signing-keys-test",
                files: MIGRATIONS,
            }],
        )
        .await
        .expect("migrate");
        TestDb { db, url, _dir: dir }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::test_db;
    use super::*;
    use basalt_platform::with_conn;

    async fn rows(db: &Db) -> Vec<(String, String, Option<Vec<u8>>)> {
        with_conn!(db, |conn| {
            sqlx::query_as::<_, (String, String, Option<Vec<u8>>)>(
                "SELECT kid, state, private_key FROM identity_signing_keys ORDER BY created_at, kid",
            )
            .fetch_all(conn)
            .await
        })
        .expect("rows")
    }

    async fn count_in(db: &Db, state: KeyState) -> i64 {
        with_conn!(db, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM identity_signing_keys WHERE state = $1",
            )
            .bind(state.as_str())
            .fetch_one(conn)
            .await
        })
        .expect("count")
    }

    fn jwks_kids(keys: &SigningKeys) -> Vec<String> {
        keys.jwks()["keys"]
            .as_array()
            .expect("keys array")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }

    /// RFC 8037 appendix A.3: the thumbprint of the example key.
    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[tokio::test]
    async fn first_start_creates_an_active_and_a_next_key() {
        let test = test_db().await;
        let db = &test.db;
        let keys = SigningKeys::load_or_create(db).await.expect("keys");
        assert_eq!(count_in(db, KeyState::Active).await, 1);
        assert_eq!(count_in(db, KeyState::Next).await, 1);

        let jwks = keys.jwks();
        let published = jwks["keys"].as_array().expect("keys array");
        assert_eq!(published.len(), 2);
        assert_eq!(published[0]["kid"], keys.active_kid().as_str());
        for jwk in published {
            assert_eq!(jwk["kty"], "OKP");
            assert_eq!(jwk["crv"], "Ed25519");
            assert_eq!(jwk["alg"], "EdDSA");
            assert_eq!(jwk["use"], "sig");
            let x = jwk["x"].as_str().expect("x");
            assert_eq!(URL_SAFE_NO_PAD.decode(x).expect("base64url").len(), 32);
            assert_eq!(jwk["kid"], thumbprint(x).as_str());
            // Public members only: no "d" (the private key), nothing else.
            let members: Vec<&str> = jwk
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(members.len(), 6, "{members:?}");
            assert!(jwk.get("d").is_none());
        }

        // A restart loads the same keys instead of creating new ones.
        let again = SigningKeys::load_or_create(db).await.expect("keys");
        assert_eq!(again.active_kid(), keys.active_kid());
        assert_eq!(jwks_kids(&again), jwks_kids(&keys));
        assert_eq!(rows(db).await.len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_starts_agree_on_one_active_key() {
        let test = test_db().await;
        let db = &test.db;
        // Several "nodes", each with its own pool on the same database.
        let mut nodes = vec![db.clone()];
        for _ in 0..7 {
            nodes.push(test.another_node().await);
        }
        // Warm every pool up, so that no node is ahead by a connection set-up
        // and the starts really overlap.
        for node in &nodes {
            node.ping(Duration::from_secs(5)).await.expect("ping");
        }
        // Each node starts on its own task, as separate processes would.
        let starts: Vec<_> = nodes
            .iter()
            .map(|node| {
                let node = node.clone();
                tokio::spawn(async move { SigningKeys::load_or_create(&node).await })
            })
            .collect();
        let mut kids = Vec::new();
        for start in starts {
            let keys = start.await.expect("join").expect("load_or_create");
            kids.push(keys.active_kid());
        }
        assert!(kids.windows(2).all(|w| w[0] == w[1]), "{kids:?}");
        assert_eq!(count_in(db, KeyState::Active).await, 1);
        assert_eq!(count_in(db, KeyState::Next).await, 1);
        assert_eq!(rows(db).await.len(), 2);
    }

    #[tokio::test]
    async fn rotate_moves_every_key_one_step() {
        let test = test_db().await;
        let db = &test.db;
        let keys = SigningKeys::load_or_create(db).await.expect("keys");
        let first_active = keys.active_kid();
        let first_next = jwks_kids(&keys)[1].clone();

        let rotation = SigningKeys::rotate(db).await.expect("rotate");
        assert_eq!(rotation.retired.as_deref(), Some(first_active.as_str()));
        assert_eq!(rotation.active, first_next);
        assert_ne!(rotation.next, first_next);

        let by_kid: HashMap<String, (String, Option<Vec<u8>>)> = rows(db)
            .await
            .into_iter()
            .map(|(kid, state, private)| (kid, (state, private)))
            .collect();
        assert_eq!(by_kid.len(), 3);
        let (state, private) = &by_kid[&first_active];
        assert_eq!(state, "retired");
        assert!(private.is_none(), "a retired key's private key is erased");
        assert_eq!(by_kid[&rotation.active].0, "active");
        assert_eq!(by_kid[&rotation.next].0, "next");

        // This process has not reloaded yet: it still signs with the old key.
        assert_eq!(keys.active_kid(), first_active);
        keys.reload().await.expect("reload");
        assert_eq!(keys.active_kid(), rotation.active);
        assert_eq!(
            jwks_kids(&keys),
            vec![
                rotation.active.clone(),
                rotation.next.clone(),
                first_active.clone()
            ]
        );
        assert_eq!(count_in(db, KeyState::Active).await, 1);
        assert_eq!(count_in(db, KeyState::Next).await, 1);
    }

    /// Two operators rotating at once: the rotations run one after the
    /// other (two steps), never leaving two active or two next keys.
    #[tokio::test]
    async fn concurrent_rotations_are_serialised() {
        let test = test_db().await;
        let db = &test.db;
        SigningKeys::load_or_create(db).await.expect("keys");
        let other = test.another_node().await;
        db.ping(Duration::from_secs(5)).await.expect("ping");
        other.ping(Duration::from_secs(5)).await.expect("ping");
        let (a, b) = tokio::join!(SigningKeys::rotate(db), SigningKeys::rotate(&other));
        let (a, b) = (a.expect("rotate"), b.expect("rotate"));
        // One rotation's new active key is the other's retired one.
        assert!(
            a.retired.as_ref() == Some(&b.active) || b.retired.as_ref() == Some(&a.active),
            "{a:?} {b:?}"
        );
        assert_eq!(count_in(db, KeyState::Active).await, 1);
        assert_eq!(count_in(db, KeyState::Next).await, 1);
        assert_eq!(count_in(db, KeyState::Retired).await, 2);
    }

    #[tokio::test]
    async fn rotate_on_an_empty_table_creates_keys() {
        let test = test_db().await;
        let db = &test.db;
        let rotation = SigningKeys::rotate(db).await.expect("rotate");
        assert_eq!(rotation.retired, None);
        let keys = SigningKeys::load_or_create(db).await.expect("keys");
        assert_eq!(keys.active_kid(), rotation.active);
        assert_eq!(rows(db).await.len(), 2);
    }

    #[tokio::test]
    async fn retired_keys_drop_out_after_their_ttl() {
        let test = test_db().await;
        let db = &test.db;
        let options = KeyOptions {
            retired_ttl: Duration::from_millis(1500),
            ..KeyOptions::default()
        };
        let keys = SigningKeys::load_or_create_with(db, options)
            .await
            .expect("keys");
        let old = keys.active_kid();
        SigningKeys::rotate(db).await.expect("rotate");
        keys.reload().await.expect("reload");
        assert!(jwks_kids(&keys).contains(&old));
        assert!(keys.decoding_key(&old).await.is_some());

        tokio::time::sleep(Duration::from_millis(1600)).await;
        // Without a reload: expiry is checked at use.
        assert!(!jwks_kids(&keys).contains(&old));
        assert!(keys.decoding_key(&old).await.is_none());
        // And after one: the expired key is not loaded at all.
        keys.reload().await.expect("reload");
        assert_eq!(jwks_kids(&keys).len(), 2);
    }

    #[tokio::test]
    async fn unknown_kids_reload_at_most_once_per_interval() {
        let test = test_db().await;
        let db = &test.db;
        let options = KeyOptions {
            min_reload_interval: Duration::from_secs(3600),
            ..KeyOptions::default()
        };
        let keys = SigningKeys::load_or_create_with(db, options)
            .await
            .expect("keys");
        // The first miss reloads (and finds nothing)…
        assert!(keys.decoding_key("no-such-kid").await.is_none());
        // …so a rotation right after is not seen through misses until the
        // interval has passed, only through the periodic/explicit reload.
        let rotation = SigningKeys::rotate(db).await.expect("rotate");
        SigningKeys::rotate(db).await.expect("rotate");
        let newest = {
            let mut all = rows(db).await;
            all.retain(|(_, state, _)| state == "next");
            all.remove(0).0
        };
        assert!(keys.decoding_key(&newest).await.is_none());
        keys.reload().await.expect("reload");
        assert!(keys.decoding_key(&newest).await.is_some());
        assert!(keys.decoding_key(&rotation.active).await.is_some());
    }

    #[tokio::test]
    async fn periodic_refresh_picks_up_a_rotation() {
        let test = test_db().await;
        let db = &test.db;
        let options = KeyOptions {
            refresh_interval: Duration::from_millis(100),
            ..KeyOptions::default()
        };
        let keys = SigningKeys::load_or_create_with(db, options)
            .await
            .expect("keys");
        let stop = CancellationToken::new();
        let refresh = tokio::spawn(keys.refresh_until(stop.clone()));
        let rotation = SigningKeys::rotate(db).await.expect("rotate");
        let deadline = Instant::now() + Duration::from_secs(10);
        while keys.active_kid() != rotation.active {
            assert!(Instant::now() < deadline, "no refresh within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), refresh)
            .await
            .expect("the refresh ends when told to")
            .expect("joins");
    }

    #[tokio::test]
    async fn debug_output_holds_no_key_material() {
        let test = test_db().await;
        let db = &test.db;
        let keys = SigningKeys::load_or_create(db).await.expect("keys");
        let rendered = format!("{keys:?} {:?}", keys.active());
        assert!(rendered.contains(&keys.active_kid()), "{rendered}");
        let (_, _, private) = rows(db)
            .await
            .into_iter()
            .find(|(kid, _, _)| *kid == keys.active_kid())
            .expect("active row");
        let private = private.expect("private key");
        for encoded in [
            URL_SAFE_NO_PAD.encode(&private),
            base64::engine::general_purpose::STANDARD.encode(&private),
        ] {
            assert!(!rendered.contains(&encoded));
        }
        assert!(!rendered.contains("EncodingKey"), "{rendered}");
    }
}
