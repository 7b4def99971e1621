//! Access tokens: short-lived JWTs signed with the active Ed25519 key.
//!
//! Verification is strict on purpose. Only `EdDSA` is accepted, whatever the
//! token's header claims, so neither `alg: none` nor the classic key
//! confusion (an HMAC token "signed" with our public key) can pass. The
//! header must name a key of ours by `kid` and carry `typ: at+jwt` (RFC 9068),
//! so that other JWTs signed with the same keys (e.g. future ID tokens)
//! are not mistaken for access tokens. `iss`, `aud`, `exp`, `nbf` and `sub`
//! are required and checked, with a small clock leeway.

use std::fmt;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::SigningKeys;

/// The JOSE `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Clock skew tolerated on `exp` and `nbf`, in seconds: nodes' clocks drift a
/// little; more would stretch every token's lifetime.
pub const LEEWAY_SECS: u64 = 15;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the deployment's public URL.
    pub iss: String,
    /// Audience: who the token is for.
    pub aud: String,
    /// Subject: the user id.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Not valid before, seconds since the Unix epoch.
    pub nbf: i64,
    /// Unique token id (a UUID), e.g. for deny lists.
    pub jti: String,
    /// The user's role when the token was issued: informative only, since
    /// authorisation reads the account's current role.
    pub role: String,
    /// The account's token generation at issue. A token of an older
    /// generation is refused: how "sign out everywhere" and a password
    /// reset end stateless tokens. Tokens from before the claim existed
    /// count as generation 0.
    #[serde(default, rename = "gen")]
    pub generation: i64,
    /// The session or refresh-token family the token belongs to, so that
    /// revoking it can also refuse its access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl AccessClaims {
    /// The subject as a user id; `None` if it is not a UUID.
    pub fn user_id(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.sub).ok()
    }
}

/// A freshly signed access token. Its `Debug` output leaves the token out,
/// since a bearer token in a log line is a credential in a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// When it expires (the `exp` claim).
    pub expires_at: DateTime<Utc>,
    /// Its `jti` claim.
    pub jti: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("jti", &self.jti)
            .finish()
    }
}

/// Why an access token was refused. Messages are safe to show to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed JWT of ours: bad encoding, missing claims, an
    /// algorithm other than EdDSA, or not an access token.
    #[error("the access token is malformed")]
    Malformed,
    /// No `kid`, or one that names no current key.
    #[error("the access token was signed by an unknown key")]
    UnknownKey,
    /// The signature does not match.
    #[error("the access token signature is invalid")]
    BadSignature,
    /// Past `exp`.
    #[error("the access token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// Another issuer.
    #[error("the access token was issued by another issuer")]
    WrongIssuer,
    /// Meant for another audience.
    #[error("the access token is meant for another audience")]
    WrongAudience,
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        match error.kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            // Everything else (encoding, JSON, missing or mistyped claims,
            // algorithm mismatch, key format) means the token is not one of
            // ours; no detail is worth giving a client.
            _ => Self::Malformed,
        }
    }
}

/// Issues and verifies access tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenIssuer {
    keys: SigningKeys,
    issuer: String,
    audience: String,
    ttl: Duration,
    validation: Validation,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("keys", &self.keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl TokenIssuer {
    /// An issuer of tokens valid for `ttl`, for `audience`, in the name of
    /// `issuer`. Logs a warning when the keys' `retired_ttl` is too short
    /// for `ttl`: tokens would then stop verifying early after a rotation.
    pub fn new(keys: SigningKeys, issuer: String, audience: String, ttl: Duration) -> Self {
        let options = keys.options();
        let needed = ttl + options.refresh_interval + Duration::from_secs(LEEWAY_SECS);
        if options.retired_ttl < needed {
            tracing::warn!(
                access_token_ttl_secs = ttl.as_secs(),
                retired_ttl_secs = options.retired_ttl.as_secs(),
                "retired signing keys expire before the access tokens they signed; \
                 tokens will be refused early after a key rotation"
            );
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Explicit, although `new` already does it: the one algorithm we sign
        // with is the only one we verify.
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Self {
            keys,
            issuer,
            audience,
            ttl,
            validation,
        }
    }

    /// The keys tokens are signed with (e.g. to serve the JWKS).
    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// How long issued tokens are valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs a token for `user_id` with the active key, valid for the
    /// configured lifetime.
    pub async fn issue(
        &self,
        user_id: Uuid,
        role: &str,
        generation: i64,
        sid: Option<&str>,
    ) -> anyhow::Result<IssuedToken> {
        self.issue_for(user_id, role, generation, sid, self.ttl)
            .await
    }

    /// Signs a token valid for `ttl` instead (RealWorld tokens).
    pub async fn issue_for(
        &self,
        user_id: Uuid,
        role: &str,
        generation: i64,
        sid: Option<&str>,
        ttl: Duration,
    ) -> anyhow::Result<IssuedToken> {
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).context("access token lifetime too long")?;
        let exp = now
            .checked_add(ttl)
            .context("access token lifetime too long")?;
        let expires_at =
            DateTime::from_timestamp(exp, 0).context("access token expiry out of range")?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            exp,
            iat: now,
            nbf: now,
            jti: Uuid::new_v4().to_string(),
            role: role.to_owned(),
            generation,
            sid: sid.map(str::to_owned),
        };
        let token = self.sign(&claims)?;
        Ok(IssuedToken {
            token,
            expires_at,
            jti: claims.jti,
        })
    }

    /// Checks a token and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        // Checked here as well as by `decode`, before any key lookup, so a
        // foreign algorithm never costs a reload.
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let is_access_token = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
                || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !is_access_token {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .decoding_key(&kid)
            .await
            .ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)?;
        Ok(data.claims)
    }

    /// Signs arbitrary claims with the active key and our header.
    fn sign<C: Serialize>(&self, claims: &C) -> anyhow::Result<String> {
        let active = self.keys.active();
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(active.kid);
        jsonwebtoken::encode(&header, claims, &active.encoding)
            .map_err(|e| anyhow!("signing an access token failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    use jsonwebtoken::EncodingKey;
    use serde_json::{Value, json};

    use super::super::keys::test_support::{TestDb, test_db};
    use super::super::keys::{KeyOptions, SigningKeys};
    use super::*;

    const ISS: &str = "https://basalt.test";
    const AUD: &str = "basalt-api";
    const TTL: Duration = Duration::from_secs(900);

    async fn setup() -> (TestDb, TokenIssuer) {
        let test = test_db().await;
        let keys = SigningKeys::load_or_create(&test.db).await.expect("keys");
        let issuer = TokenIssuer::new(keys, ISS.into(), AUD.into(), TTL);
        (test, issuer)
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
    }

    fn now() -> i64 {
        Utc::now().timestamp()
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            aud: AUD.into(),
            sub: Uuid::new_v4().to_string(),
            exp: now() + 600,
            iat: now(),
            nbf: now(),
            jti: Uuid::new_v4().to_string(),
            role: "user".into(),
            generation: 0,
            sid: None,
        }
    }

    /// The public key of the active key as raw bytes, from the JWKS.
    fn active_public_key(issuer: &TokenIssuer) -> Vec<u8> {
        let kid = issuer.keys().active_kid();
        let jwks = issuer.keys().jwks();
        let jwk = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .expect("active key in JWKS")
            .clone();
        URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().expect("x"))
            .expect("base64url")
    }

    #[tokio::test]
    async fn issued_tokens_verify_with_their_claims() {
        let (_test, issuer) = setup().await;
        let user = Uuid::now_v7();
        let issued = issuer
            .issue(user, "admin", 0, Some("family-1"))
            .await
            .expect("issue");
        let claims = issuer.verify(&issued.token).await.expect("verify");
        assert_eq!(claims.user_id(), Some(user));
        assert_eq!(claims.sub, user.to_string());
        assert_eq!(claims.role, "admin");
        assert_eq!(claims.sid.as_deref(), Some("family-1"));
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), (ISS, AUD));
        assert_eq!(claims.jti, issued.jti);
        assert!(Uuid::parse_str(&claims.jti).is_ok());
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(claims.nbf, claims.iat);
        assert_eq!(issued.expires_at.timestamp(), claims.exp);

        let header = jsonwebtoken::decode_header(&issued.token).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid, Some(issuer.keys().active_kid()));

        // Without a session id, the claim is absent rather than null.
        let issued = issuer.issue(user, "user", 0, None).await.expect("issue");
        let payload = issued.token.split('.').nth(1).expect("payload");
        let payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        assert!(payload.get("sid").is_none(), "{payload}");
        assert_eq!(
            issuer.verify(&issued.token).await.expect("verify").sid,
            None
        );
        // Every token is unique.
        let other = issuer.issue(user, "user", 0, None).await.expect("issue");
        assert_ne!(other.jti, issued.jti);
    }

    #[tokio::test]
    async fn tampered_payload_is_refused() {
        let (_test, issuer) = setup().await;
        let issued = issuer
            .issue(Uuid::now_v7(), "user", 0, None)
            .await
            .expect("issue");
        let parts: Vec<&str> = issued.token.split('.').collect();
        let mut payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        payload["role"] = json!("admin");
        let forged = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
        assert_eq!(issuer.verify(&forged).await, Err(TokenError::BadSignature));
        // A flipped signature byte as well.
        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        signature[0] ^= 1;
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert_eq!(issuer.verify(&forged).await, Err(TokenError::BadSignature));
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let (_test, issuer) = setup().await;
        let kid = issuer.keys().active_kid();
        let payload = serde_json::to_value(claims()).expect("claims");
        for alg in ["none", "None", "NONE"] {
            let header = json!({ "alg": alg, "typ": "at+jwt", "kid": kid });
            for signature in ["", "AAAA"] {
                let token = format!("{}.{}.{signature}", b64(&header), b64(&payload));
                assert_eq!(
                    issuer.verify(&token).await,
                    Err(TokenError::Malformed),
                    "{alg} {signature:?}"
                );
            }
        }
    }

    /// The classic key confusion: an attacker signs with HMAC, using our
    /// public key (which anyone can fetch) as the secret.
    #[tokio::test]
    async fn hmac_signed_with_the_public_key_is_refused() {
        let (_test, issuer) = setup().await;
        let kid = issuer.keys().active_kid();
        let raw = active_public_key(&issuer);
        let x = URL_SAFE_NO_PAD.encode(&raw);
        for secret in [raw.clone(), x.into_bytes()] {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let mut header = Header::new(alg);
                header.kid = Some(kid.clone());
                header.typ = Some("at+jwt".into());
                let token =
                    jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret))
                        .expect("encode");
                assert_eq!(
                    issuer.verify(&token).await,
                    Err(TokenError::Malformed),
                    "{alg:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn expired_tokens_are_refused_beyond_the_leeway() {
        let (_test, issuer) = setup().await;
        let mut expired = claims();
        expired.iat = now() - 1000;
        expired.nbf = expired.iat;
        expired.exp = now() - 120;
        let token = issuer.sign(&expired).expect("sign");
        assert_eq!(issuer.verify(&token).await, Err(TokenError::Expired));

        // Within the leeway, clock skew is forgiven.
        let mut just_expired = claims();
        just_expired.exp = now() - 5;
        let token = issuer.sign(&just_expired).expect("sign");
        assert!(issuer.verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn tokens_from_the_future_are_refused() {
        let (_test, issuer) = setup().await;
        let mut early = claims();
        early.nbf = now() + 300;
        early.exp = now() + 900;
        let token = issuer.sign(&early).expect("sign");
        assert_eq!(issuer.verify(&token).await, Err(TokenError::NotYetValid));
    }

    #[tokio::test]
    async fn wrong_issuer_or_audience_is_refused() {
        let (_test, issuer) = setup().await;
        let user = Uuid::now_v7();
        let elsewhere = TokenIssuer::new(
            issuer.keys().clone(),
            "https://evil.test".into(),
            AUD.into(),
            TTL,
        );
        let token = elsewhere.issue(user, "user", 0, None).await.expect("issue");
        assert_eq!(
            issuer.verify(&token.token).await,
            Err(TokenError::WrongIssuer)
        );
        let other_api =
            TokenIssuer::new(issuer.keys().clone(), ISS.into(), "other-api".into(), TTL);
        let token = other_api.issue(user, "user", 0, None).await.expect("issue");
        assert_eq!(
            issuer.verify(&token.token).await,
            Err(TokenError::WrongAudience)
        );
    }

    #[tokio::test]
    async fn missing_claims_are_refused() {
        let (_test, issuer) = setup().await;
        let complete = serde_json::to_value(claims()).expect("claims");
        for claim in ["exp", "nbf", "iss", "aud", "sub", "iat", "jti", "role"] {
            let mut partial = complete.clone();
            partial.as_object_mut().expect("object").remove(claim);
            let token = issuer.sign(&partial).expect("sign");
            assert_eq!(
                issuer.verify(&token).await,
                Err(TokenError::Malformed),
                "{claim}"
            );
        }
    }

    #[tokio::test]
    async fn unknown_or_missing_kid_is_refused() {
        let (_test, issuer) = setup().await;
        let token = issuer.sign(&claims()).expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        let rewrite = |header: Value| {
            // The signature covers the header, so it no longer matches, but
            // the kid check comes first.
            format!("{}.{}.{}", b64(&header), parts[1], parts[2])
        };
        let unknown = rewrite(json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "not-a-key" }));
        assert_eq!(issuer.verify(&unknown).await, Err(TokenError::UnknownKey));
        let missing = rewrite(json!({ "alg": "EdDSA", "typ": "at+jwt" }));
        assert_eq!(issuer.verify(&missing).await, Err(TokenError::UnknownKey));
    }

    #[tokio::test]
    async fn other_token_types_are_refused() {
        let (_test, issuer) = setup().await;
        let active = issuer.keys().active();
        for typ in [None, Some("JWT"), Some("id_token+jwt")] {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(active.kid.clone());
            header.typ = typ.map(str::to_owned);
            let token = jsonwebtoken::encode(&header, &claims(), &active.encoding).expect("encode");
            assert_eq!(
                issuer.verify(&token).await,
                Err(TokenError::Malformed),
                "{typ:?}"
            );
        }
    }

    /// A forger with their own Ed25519 key who names one of our kids.
    #[tokio::test]
    async fn foreign_key_with_a_known_kid_is_refused() {
        let (_test, issuer) = setup().await;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("randomness");
        let theirs = ed25519_dalek::SigningKey::from_bytes(&seed);
        let der = theirs.to_pkcs8_der().expect("pkcs8");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(issuer.keys().active_kid());
        header.typ = Some("at+jwt".into());
        let token = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("encode");
        assert_eq!(issuer.verify(&token).await, Err(TokenError::BadSignature));
    }

    #[tokio::test]
    async fn garbage_is_malformed() {
        let (_test, issuer) = setup().await;
        for token in [
            "",
            "abc",
            "a.b.c",
            "a.b",
            "....",
            "eyJhbGciOiJFZERTQSJ9.e30.",
        ] {
            assert_eq!(
                issuer.verify(token).await,
                Err(TokenError::Malformed),
                "{token:?}"
            );
        }
    }

    #[tokio::test]
    async fn rotation_keeps_old_tokens_valid_and_switches_the_kid() {
        let (test, issuer) = setup().await;
        let user = Uuid::now_v7();
        let before = issuer.issue(user, "user", 0, None).await.expect("issue");
        let old_kid = issuer.keys().active_kid();

        // The key about to take over is already published.
        let published_before: Vec<String> = issuer.keys().jwks()["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect();

        let rotation = SigningKeys::rotate(&test.db).await.expect("rotate");
        assert!(published_before.contains(&rotation.active));
        issuer.keys().reload().await.expect("reload");

        let after = issuer.issue(user, "user", 0, None).await.expect("issue");
        let kid = jsonwebtoken::decode_header(&after.token)
            .expect("header")
            .kid
            .expect("kid");
        assert_eq!(kid, rotation.active);
        assert_ne!(kid, old_kid);
        assert!(issuer.verify(&after.token).await.is_ok());
        // Tokens signed before the rotation stay valid.
        assert!(issuer.verify(&before.token).await.is_ok());
    }

    /// Two servers; the CLI rotates; one server reloads before the other.
    #[tokio::test]
    async fn a_server_that_has_not_reloaded_accepts_tokens_of_the_new_key() {
        let (test, node_a) = setup().await;
        let other_db = test.another_node().await;
        let node_b = TokenIssuer::new(
            SigningKeys::load_or_create(&other_db).await.expect("keys"),
            ISS.into(),
            AUD.into(),
            TTL,
        );
        let user = Uuid::now_v7();

        // First rotation: B knows the new active key as `next` already.
        SigningKeys::rotate(&test.db).await.expect("rotate");
        node_a.keys().reload().await.expect("reload");
        let token = node_a.issue(user, "user", 0, None).await.expect("issue");
        assert!(node_b.verify(&token.token).await.is_ok());
        // B, still on the old key, signs tokens that A accepts.
        let from_b = node_b.issue(user, "user", 0, None).await.expect("issue");
        assert!(node_a.verify(&from_b.token).await.is_ok());

        // Two rotations later, B has never seen A's key: the unknown kid
        // makes B reload once, and the token verifies.
        SigningKeys::rotate(&test.db).await.expect("rotate");
        node_a.keys().reload().await.expect("reload");
        let token = node_a.issue(user, "user", 0, None).await.expect("issue");
        assert!(node_b.verify(&token.token).await.is_ok());
        assert_eq!(node_b.keys().active_kid(), node_a.keys().active_kid());
    }

    #[tokio::test]
    async fn tokens_of_a_retired_key_expire_with_it() {
        let test = test_db().await;
        let keys = SigningKeys::load_or_create_with(
            &test.db,
            KeyOptions {
                retired_ttl: Duration::from_millis(1500),
                ..KeyOptions::default()
            },
        )
        .await
        .expect("keys");
        let issuer = TokenIssuer::new(keys, ISS.into(), AUD.into(), TTL);
        let token = issuer
            .issue(Uuid::now_v7(), "user", 0, None)
            .await
            .expect("issue");
        SigningKeys::rotate(&test.db).await.expect("rotate");
        issuer.keys().reload().await.expect("reload");
        assert!(issuer.verify(&token.token).await.is_ok());
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(
            issuer.verify(&token.token).await,
            Err(TokenError::UnknownKey)
        );
    }

    #[tokio::test]
    async fn debug_output_leaves_the_token_out() {
        let (_test, issuer) = setup().await;
        let issued = issuer
            .issue(Uuid::now_v7(), "user", 0, None)
            .await
            .expect("issue");
        let rendered = format!("{issued:?} {issuer:?}");
        assert!(!rendered.contains(&issued.token), "{rendered}");
        assert!(rendered.contains(&issued.jti), "{rendered}");
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            TokenError::Expired.to_string(),
            "the access token has expired"
        );
        assert_eq!(
            TokenError::WrongAudience.to_string(),
            "the access token is meant for another audience"
        );
    }
}
