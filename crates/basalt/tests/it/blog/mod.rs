//! The blog module: the RealWorld API and what Basalt adds to it.

mod articles;
mod cached_reads;
pub mod caching;
mod feeds;
mod pages;
mod service;
mod social;

use basalt_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::identity::{PASSWORD, identity_app, new_identity};

/// A RealWorld client: a signed-up user and their token.
pub struct Writer {
    /// Email address.
    pub email: String,
    /// Username.
    pub username: String,
    /// Token for `Authorization: Token …`.
    pub token: String,
}

/// Signs up through the RealWorld route.
pub async fn sign_up(app: &TestApp) -> Writer {
    let (email, username) = new_identity();
    let r = app
        .client
        .post(app.url("/api/users"))
        .json(&json!({ "user": { "email": email, "username": username, "password": PASSWORD } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let body: Value = r.json().await.expect("json");
    Writer {
        email,
        username,
        token: body["user"]["token"].as_str().expect("token").to_owned(),
    }
}

impl Writer {
    /// A request with this user's token.
    pub fn req(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        app.client
            .request(method, app.url(path))
            .header("authorization", format!("Token {}", self.token))
    }

    /// `method path` as this user, with `body` as JSON if any; the JSON
    /// answer, whatever its status.
    pub async fn json_of(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self.req(app, method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json")
    }

    /// Publishes an article; returns it.
    pub async fn publish(&self, app: &TestApp, title: &str, tags: &[&str]) -> Value {
        let r = self
            .req(app, reqwest::Method::POST, "/api/articles")
            .json(&json!({ "article": { "title": title, "description": "about it", "body": "# Hello\n\nText.", "tagList": tags } }))
            .send()
            .await
            .expect("answered");
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        r.json::<Value>().await.expect("json")["article"].clone()
    }
}

/// The binary's modules, with cheap password hashing.
pub async fn blog_app() -> TestApp {
    identity_app().spawn().await
}
