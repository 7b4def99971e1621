//! Access tokens (JWT), refresh rotation with reuse detection, revocation,
//! the JWKS document and key rotation; with the attacks on each.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let header = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(it.next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    let claims = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(it.next().expect("claims"))
            .expect("b64"),
    )
    .expect("json");
    (header, claims, it.next().expect("signature").to_owned())
}

/// Signs claims exactly as Basalt does (its active key, its header), so
/// that each forged token below differs from a valid one in one respect.
async fn real_signer(app: &basalt_testkit::TestApp, token: &str) -> impl Fn(&Value) -> String {
    let (header, _, _) = parts(token);
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let der: Vec<u8> = basalt_platform::with_conn!(&app.platform.db, |conn| {
        sqlx::query_scalar("SELECT private_key FROM identity_signing_keys WHERE kid = $1")
            .bind(&kid)
            .fetch_one(conn)
            .await
    })
    .expect("the signing key");
    let mut ed_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    ed_header.kid = Some(kid);
    ed_header.typ = header["typ"].as_str().map(str::to_owned);
    let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
    move |claims: &Value| jsonwebtoken::encode(&ed_header, claims, &key).expect("signs")
}

async fn signed_in(app: &basalt_testkit::TestApp) -> (String, Value) {
    let email = registered(app).await;
    let pair = tokens(app, &email, PASSWORD).await;
    (email, pair)
}

#[tokio::test]
async fn access_tokens_are_eddsa_jwts_with_the_standard_claims() {
    let app = identity_app().spawn().await;
    let (_, pair) = signed_in(&app).await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let token = pair["access_token"].as_str().expect("token");
    let (header, claims, _) = parts(token);
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].is_string());
    for claim in ["iss", "aud", "exp", "iat", "sub", "jti", "nbf"] {
        assert!(!claims[claim].is_null(), "{claim} missing from {claims}");
    }
    assert_eq!(claims["aud"], "basalt");
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        900
    );

    // Both schemes are accepted.
    assert_eq!(me_with_token(&app, token).await, StatusCode::OK);
    let r = app
        .client
        .get(app.url("/api/me"))
        .header("authorization", format!("Token {token}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);

    // The JWKS publishes the signing key.
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert!(
        keys.iter()
            .any(|k| k["kid"] == header["kid"] && k["kty"] == "OKP" && k["crv"] == "Ed25519"),
        "{jwks}"
    );
    assert!(
        keys.iter().all(|k| k.get("d").is_none()),
        "no private material: {jwks}"
    );
}

#[tokio::test]
async fn forged_and_broken_tokens_are_refused() {
    let app = identity_app().spawn().await;
    let (_, pair) = signed_in(&app).await;
    let token = pair["access_token"].as_str().expect("token");
    let (header, claims, signature) = parts(token);

    // Tampered payload: promote ourselves to admin.
    let mut admin_claims = claims.clone();
    admin_claims["role"] = json!("admin");
    let tampered = format!("{}.{}.{signature}", b64(&header), b64(&admin_claims));

    // alg: none, no signature.
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": header["typ"], "kid": header["kid"] })),
        b64(&claims)
    );

    // Key confusion: HS256 "signed" with the public key as the HMAC secret.
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    let signing_jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("published")
        .clone();
    let public_x = signing_jwk["x"].as_str().expect("x").to_owned();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = header["kid"].as_str().map(str::to_owned);
    hs_header.typ = header["typ"].as_str().map(str::to_owned);
    let mut confused = Vec::new();
    for secret in [
        public_x.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(&public_x).expect("b64"),
        serde_json::to_vec(&signing_jwk).expect("json"),
    ] {
        confused.push(
            jsonwebtoken::encode(
                &hs_header,
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(&secret),
            )
            .expect("hs256"),
        );
    }

    // Signed by a key Basalt does not know, under a known kid.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&stranger).expect("der");
    let mut ed_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    ed_header.kid = header["kid"].as_str().map(str::to_owned);
    ed_header.typ = header["typ"].as_str().map(str::to_owned);
    let foreign = jsonwebtoken::encode(
        &ed_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
    )
    .expect("eddsa");

    // Signed with the real key, but wrong in one claim or header field.
    let sign = real_signer(&app, token).await;
    assert_eq!(
        me_with_token(&app, &sign(&claims)).await,
        StatusCode::OK,
        "control: re-signed claims are valid"
    );
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        sign(&c)
    };
    let wrong_aud = with("aud", json!("someone-else"));
    let wrong_iss = with("iss", json!("https://evil.example"));
    let mut no_kid_header = header.clone();
    no_kid_header.as_object_mut().expect("object").remove("kid");
    let valid = sign(&claims);
    let no_kid = format!(
        "{}.{}",
        b64(&no_kid_header),
        valid.split_once('.').expect("jwt").1
    );

    let mut cases = vec![
        ("tampered", tampered),
        ("alg none", none),
        ("foreign key", foreign),
        ("wrong aud", wrong_aud),
        ("wrong iss", wrong_iss),
        ("no kid", no_kid),
    ];
    cases.extend(confused.into_iter().map(|t| ("HS256 key confusion", t)));
    cases.push(("garbage", "not.a.jwt".into()));
    cases.push(("truncated", token[..token.len() - 5].into()));
    for (name, forged) in cases {
        assert_eq!(
            me_with_token(&app, &forged).await,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
    }
    // A bad Authorization header never falls back to a cookie.
    let r = app
        .client
        .get(app.url("/api/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// A token signed with Basalt's real key, expired beyond the leeway, is
/// refused; the same claims unexpired are accepted (so the signing is right).
#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let app = identity_app().spawn().await;
    let (_, pair) = signed_in(&app).await;
    let token = pair["access_token"].as_str().expect("token");
    let (_, claims, _) = parts(token);
    let signer = real_signer(&app, token).await;
    let now = chrono::Utc::now().timestamp();
    let sign = |iat: i64, exp: i64| {
        let mut c = claims.clone();
        c["iat"] = json!(iat);
        c["nbf"] = json!(iat);
        c["exp"] = json!(exp);
        signer(&c)
    };
    assert_eq!(
        me_with_token(&app, &sign(now - 10, now + 600)).await,
        StatusCode::OK,
        "control: same key, valid times"
    );
    let leeway = i64::try_from(basalt_identity::tokens::jwt::LEEWAY_SECS).expect("small");
    assert_eq!(
        me_with_token(&app, &sign(now - 1000, now - leeway - 5)).await,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    assert_eq!(
        me_with_token(&app, &sign(now + leeway + 60, now + 900)).await,
        StatusCode::UNAUTHORIZED,
        "not yet valid"
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = identity_app()
        .env("BASALT_IDENTITY__REFRESH_REUSE_GRACE_SECS", "0")
        .spawn()
        .await;
    let (_, pair) = signed_in(&app).await;
    let refresh = |token: Value| {
        app.client
            .post(app.url("/api/auth/refresh"))
            .json(&json!({ "refresh_token": token }))
            .send()
    };

    let second: Value = {
        let r = refresh(pair["refresh_token"].clone())
            .await
            .expect("answered");
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    };
    assert_ne!(second["refresh_token"], pair["refresh_token"]);
    assert_eq!(
        me_with_token(&app, second["access_token"].as_str().expect("token")).await,
        StatusCode::OK
    );

    // The first token was spent; presenting it again is theft.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        refresh(pair["refresh_token"].clone())
            .await
            .expect("answered")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // ... so the whole family is revoked, including the legitimate successor.
    assert_eq!(
        refresh(second["refresh_token"].clone())
            .await
            .expect("answered")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let reuse = audit_events(&app, None)
        .await
        .into_iter()
        .filter(|r| r.event == "refresh_token_reuse")
        .count();
    assert_eq!(reuse, 1);
    // Unknown tokens are plain 401s.
    assert_eq!(
        refresh(json!("made-up")).await.expect("answered").status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_concurrent_retry_within_the_grace_window_is_not_theft() {
    let app = identity_app()
        .env("BASALT_IDENTITY__REFRESH_REUSE_GRACE_SECS", "30")
        .spawn()
        .await;
    let (_, pair) = signed_in(&app).await;
    let retries = (0..4).map(|_| refresh(&app, &pair["refresh_token"]));
    let mut pairs = Vec::new();
    for r in futures_util::future::join_all(retries).await {
        assert_eq!(r.status(), StatusCode::OK);
        pairs.push(r.json::<Value>().await.expect("json"));
    }
    // Whichever answer the client kept goes on working.
    assert_eq!(
        refresh(&app, &pairs[3]["refresh_token"]).await.status(),
        StatusCode::OK
    );
    assert!(
        audit_events(&app, None)
            .await
            .iter()
            .all(|r| r.event != "refresh_token_reuse")
    );
}

#[tokio::test]
async fn inside_the_grace_window_only_the_newest_spent_token_may_be_retried() {
    let app = identity_app()
        .env("BASALT_IDENTITY__REFRESH_REUSE_GRACE_SECS", "30")
        .spawn()
        .await;
    let (_, pair) = signed_in(&app).await;
    let rt = pair["refresh_token"].clone();
    let rotate = |r: reqwest::Response| async move {
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.expect("json")["refresh_token"].clone()
    };
    let rt2 = rotate(refresh(&app, &rt).await).await;
    // RT2 unused: presenting RT again is a client that lost the response.
    let rt2_retry = rotate(refresh(&app, &rt).await).await;
    assert_ne!(rt2_retry, rt2);
    let rt3 = rotate(refresh(&app, &rt2).await).await;

    // RT's successor has been spent: RT now is a copy being replayed.
    assert_eq!(refresh(&app, &rt).await.status(), StatusCode::UNAUTHORIZED);
    for live in [&rt3, &rt2_retry] {
        assert_eq!(
            refresh(&app, live).await.status(),
            StatusCode::UNAUTHORIZED,
            "the whole family is revoked"
        );
    }
    let reuse = audit_events(&app, None)
        .await
        .into_iter()
        .filter(|r| r.event == "refresh_token_reuse")
        .count();
    assert_eq!(reuse, 1);
}

#[tokio::test]
async fn revocation_ends_the_family_and_reveals_nothing() {
    let app = identity_app().spawn().await;
    let (_, pair) = signed_in(&app).await;
    let revoke = |token: Value| {
        app.client
            .post(app.url("/api/auth/revoke"))
            .json(&json!({ "token": token }))
            .send()
    };
    assert_eq!(
        revoke(pair["refresh_token"].clone())
            .await
            .expect("answered")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        revoke(json!("never-issued"))
            .await
            .expect("answered")
            .status(),
        StatusCode::OK
    );
    let r = app
        .client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_families_have_an_absolute_lifetime() {
    let app = identity_app()
        .env("BASALT_IDENTITY__REFRESH_TOKEN_TTL_SECS", "2")
        .spawn()
        .await;
    let (_, pair) = signed_in(&app).await;
    let r: Value = app
        .client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(
        r["refresh_expires_at"], pair["refresh_expires_at"],
        "rotation does not extend the family"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let late = app
        .client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": r["refresh_token"] }))
        .send()
        .await
        .expect("answered");
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn key_rotation_publishes_before_signing_and_keeps_old_tokens_valid() {
    let app = identity_app()
        .env("BASALT_IDENTITY__SIGNING_KEYS_REFRESH_SECS", "1")
        .spawn()
        .await;
    let (_, pair) = signed_in(&app).await;
    let old_token = pair["access_token"].as_str().expect("token").to_owned();
    let (old_header, _, _) = parts(&old_token);
    let before: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    let before_kids: Vec<Value> = before["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert!(
        before_kids.len() >= 2,
        "the next key is published ahead: {before}"
    );

    // What `basalt keys rotate` does, on the same database.
    basalt_identity::tokens::keys::SigningKeys::rotate(&app.platform.db)
        .await
        .expect("rotates");

    // The running server picks the rotation up (reload on unknown kid / periodically).
    let email = registered(&app).await;
    let mut new_kid = Value::Null;
    for _ in 0..20 {
        let fresh = tokens(&app, &email, PASSWORD).await;
        let (h, _, _) = parts(fresh["access_token"].as_str().expect("token"));
        if h["kid"] != old_header["kid"] {
            new_kid = h["kid"].clone();
            assert_eq!(
                me_with_token(&app, fresh["access_token"].as_str().expect("token")).await,
                StatusCode::OK
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !new_kid.is_null(),
        "new tokens are signed with the promoted key"
    );
    assert!(
        before_kids.contains(&new_kid),
        "the key that now signs was published before rotation"
    );
    assert_eq!(
        me_with_token(&app, &old_token).await,
        StatusCode::OK,
        "tokens of the retired key stay valid"
    );
}
